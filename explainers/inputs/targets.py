"""Pick the class to explain from what a person typed: nothing, an index, or (part of) a label."""

from __future__ import annotations

from collections.abc import Sequence


class TargetError(ValueError):
    """The target names no class, or several; the message lists what would work."""


def resolve_target(target: int | str | None, labels: Sequence[str], default: int) -> int:
    if target is None or (isinstance(target, str) and not target.strip()):
        return default
    if isinstance(target, int) or str(target).strip().lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < len(labels):
            raise TargetError(f"Class index {index} is out of range: this model has classes 0 to {len(labels) - 1}.")
        return index
    wanted = str(target).strip().lower()
    exact = [i for i, label in enumerate(labels) if wanted in _names(label)]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [i for i, label in enumerate(labels) if wanted in label.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise TargetError(f"No class is called {target!r}. Give a class index or part of a label.")
    shown = "; ".join(f"{i}: {labels[i]}" for i in partial[:8])
    more = f" and {len(partial) - 8} more" if len(partial) > 8 else ""
    raise TargetError(f"{target!r} matches several classes ({shown}{more}). Give the index or a longer name.")


def _names(label: str) -> set[str]:
    """ImageNet labels list synonyms: "tabby, tabby cat" answers to either."""
    return {part.strip().lower() for part in label.split(",")} | {label.strip().lower()}
