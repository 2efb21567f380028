"""The layering rule: compute never imports Streamlit or Plotly; figures and records never import torch."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_models_import_neither_streamlit_nor_plotly():
    for path in (ROOT / "models").rglob("*.py"):
        assert not imported_roots(path) & {"streamlit", "plotly"}, path


def test_explainers_never_import_streamlit():
    for path in (ROOT / "explainers").rglob("*.py"):
        assert "streamlit" not in imported_roots(path), path


def test_figures_and_records_need_no_torch():
    names = ("plots.py", "text_plots.py", "types.py", "text_types.py", "clip_types.py", "records.py", "export.py",
             "image_input.py", "samples.py")
    for name in names:
        path = ROOT / "explainers" / name
        local = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert not imported_roots(path) & {"torch", "captum", "models"}, name
        # and not through a sibling that computes
        assert not local & {"image", "text", "clip", "attribution", "cam"}, name


def test_compute_never_imports_plotly():
    for name in ("image.py", "text.py", "clip.py", "attribution.py", "cam.py", "targets.py"):
        assert "plotly" not in imported_roots(ROOT / "explainers" / name), name


def test_pages_do_no_compute():
    for path in (ROOT / "pages").rglob("*.py"):
        assert not imported_roots(path) & {"torch", "captum", "plotly"}, path


def test_weights_are_never_unpickled_freely_nor_remote_code_trusted():
    torch_loads = 0
    for folder in ("models", "explainers", "ui", "pages"):
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
