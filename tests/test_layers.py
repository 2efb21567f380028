"""The layering rule: compute never imports Streamlit or Plotly; figures, records and inputs never import torch.

explainers/ is split by concern: methods/ and evaluation/ compute, tasks/ runs them per modality under a
model's lock, audit/ runs them over a dataset, records/ holds the plain results and their exports,
figures/ draws them, reports/ lays them out as documents, inputs/ checks what users send. The folder a file sits in decides which rule applies to it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPLAINERS = ROOT / "explainers"
COMPUTE = ("methods", "evaluation", "tasks", "audit", "inside")
PLAIN = ("records", "figures", "inputs", "reports")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def explainer_imports(path: Path) -> set[str]:
    """The explainers/ folders a file imports from, relative or absolute (e.g. {"records", "methods"})."""
    package = path.relative_to(EXPLAINERS).parts[:-1]
    folders = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0 and node.module and node.module.startswith("explainers."):
            folders.add(node.module.split(".")[1])
        elif node.level > 0:
            base = list(package[: len(package) - (node.level - 1)])
            parts = base + (node.module.split(".") if node.module else [])
            if parts:
                folders.add(parts[0])
    return folders


def files_in(*folders: str) -> list[Path]:
    found = [path for folder in folders for path in (EXPLAINERS / folder).rglob("*.py")]
    assert found, folders  # the rule is really being checked
    return found


def test_explainers_is_split_by_concern():
    flat = {path.name for path in EXPLAINERS.glob("*.py")}
    assert flat == {"__init__.py", "__main__.py", "cli.py"}, flat
    for folder in COMPUTE + PLAIN:
        assert (EXPLAINERS / folder / "__init__.py").exists(), folder


def test_models_import_neither_streamlit_nor_plotly():
    for path in (ROOT / "models").rglob("*.py"):
        assert not imported_roots(path) & {"streamlit", "plotly"}, path


def test_explainers_never_import_streamlit():
    for path in EXPLAINERS.rglob("*.py"):
        assert "streamlit" not in imported_roots(path), path


def test_figures_records_and_inputs_need_no_torch():
    for path in files_in(*PLAIN):
        assert not imported_roots(path) & {"torch", "captum", "models"}, path
        # and not through a folder that computes
        assert not explainer_imports(path) & set(COMPUTE), path


def test_compute_never_imports_plotly():
    for path in files_in(*COMPUTE):
        assert "plotly" not in imported_roots(path), path
        assert "figures" not in explainer_imports(path), path


def test_pages_do_no_compute():
    for path in (ROOT / "app_pages").rglob("*.py"):
        assert not imported_roots(path) & {"torch", "captum", "plotly"}, path


def test_weights_are_never_unpickled_freely_nor_remote_code_trusted():
    torch_loads = 0
    for folder in ("models", "explainers", "ui", "app_pages"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                assert keywords.get("trust_remote_code", False) is False, f"{path}: trust_remote_code"
                if ast.unparse(node.func) == "torch.load":
                    torch_loads += 1
                    assert keywords.get("weights_only") is True, f"{path}: torch.load without weights_only=True"
    assert torch_loads >= 1  # the bundled EfficientNet's state dict: the rule is really being checked
