"""results.jsonl: one JSON line per item as it finishes, and the resume of an interrupted audit.

Every line carries the audit's id (config.audit_id). On resume, lines of the same audit count as
done; a line cut short by the interruption is dropped and the file rewritten without it, so that
appending goes on from a clean end. A file written by another audit is refused, never mixed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DatasetError


class ResultsFile:
    def __init__(self, path: str | Path | None, audit: str):
        self.path = Path(path) if path else None
        self.audit = audit
        self._handle = None

    def done(self) -> dict[str, dict]:
        """Results already on disk for this audit, by item input; cleans a torn last line."""
        if self.path is None or not self.path.exists():
            return {}
        kept, lines, torn = {}, [], False
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                torn = True  # the interruption cut a line short
                continue
            if not isinstance(record, dict) or "input" not in record:
                torn = True
                continue
            if record.get("audit") != self.audit:
                raise DatasetError(
                    f"{self.path} holds results of another audit (other data, model or settings). "
                    "Choose another --results file, or delete this one to start over."
                )
            kept[record["input"]] = record
            lines.append(line)
        if torn:
            temporary = self.path.with_suffix(self.path.suffix + ".tmp")
            temporary.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            os.replace(temporary, self.path)
        return kept

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps({**record, "audit": self.audit}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
