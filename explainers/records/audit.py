"""The plain record of a finished audit: what the report, the page and `--json` read. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Audit:
    """Everything the report shows: settings, every item's result, the summary and the examples."""

    config: dict  # AuditConfig.as_dict(): task, model, methods, sample, seed, steps, prompts, ...
    dataset: dict  # origin, sha256 (of the manifest or listing), group_columns
    model: dict  # name, source, note, weights_sha256
    id: str  # ties a results file to this config, data and model
    results: tuple[dict, ...]  # one per item, as in results.jsonl
    summary: dict  # explainers/audit/metrics.py summarise()
    examples: dict = field(default_factory=dict)  # "confident_errors" / "unsure_correct" -> explained items
    sanity: tuple[dict, ...] = ()
    environment: dict = field(default_factory=dict)  # python, platform, library versions
    started: str = ""  # UTC, ISO 8601
    seconds: float = 0.0
    engine: str = "local"
    resumed: int = 0  # items read back from the results file instead of predicted again
