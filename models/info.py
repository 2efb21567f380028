"""Which model answered a request, from where, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str  # what answered, e.g. "ResNet-50 (microsoft/resnet-50)"
    source: str  # where its weights came from, e.g. "local cache", "bundled package"
    note: str = ""  # why this model answered when another was asked for

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "note": self.note}
