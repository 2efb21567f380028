"""Match a dataset's labels to the model's classes: by index, by full name, or by one of its synonyms.

ImageNet labels list synonyms ("tabby, tabby cat"), so a folder called `tabby` is that class; a
whole label wins over a synonym ("missile" is class 657, not "projectile, missile"). A
label matching nothing, or more than one class, stops the audit before any model work, with the
closest class names, so accuracy is never computed against a guess.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from .errors import DatasetError


def names_of(label: str) -> set[str]:
    return {part.strip().lower() for part in label.split(",")} | {" ".join(label.lower().split())}


def match_labels(given: Iterable[str], classes: Sequence[str]) -> dict[str, int]:
    """Each given label's class index; DatasetError naming every label that does not match."""
    by_full = {" ".join(label.lower().split()): index for index, label in enumerate(classes)}
    by_name: dict[str, set[int]] = {}
    for index, label in enumerate(classes):
        for name in names_of(label):
            by_name.setdefault(name, set()).add(index)
    matched, problems = {}, []
    for label in sorted(set(given)):
        wanted = " ".join(label.lower().split())
        if wanted.lstrip("-").isdigit():
            index = int(wanted)
            if 0 <= index < len(classes):
                matched[label] = index
            else:
                problems.append(f"{label!r} (class indices run from 0 to {len(classes) - 1})")
            continue
        found = {by_full[wanted]} if wanted in by_full else by_name.get(wanted, set())
        if len(found) == 1:
            matched[label] = next(iter(found))
        elif found:
            shown = "; ".join(f"{i}: {classes[i]}" for i in sorted(found)[:5])
            problems.append(f"{label!r} names several classes ({shown}): use the index")
        else:
            problems.append(f"{label!r} ({_closest(wanted, by_name, classes)})")
    if problems:
        shown = problems[:12] + ([f"and {len(problems) - 12} more"] if len(problems) > 12 else [])
        raise DatasetError(
            f"{len(problems)} label{'s' if len(problems) > 1 else ''} of the dataset match{'es' if len(problems) == 1 else ''} "
            f"none of the model's {len(classes)} classes: " + "; ".join(shown) + "."
        )
    return matched


def _closest(wanted: str, by_name: dict[str, set[int]], classes: Sequence[str]) -> str:
    close = difflib.get_close_matches(wanted, list(by_name), n=8, cutoff=0.6)
    indices = list(dict.fromkeys(i for name in close for i in sorted(by_name[name])))[:3]
    if not indices:
        return "no class name is close"
    return "closest: " + "; ".join(f"{i}: {classes[i]}" for i in indices)
