"""One model's turns: requests use a shared model one at a time, first come first served, and the line is visible.

Every session shares one copy of each model, and a model runs one request at a time (see RELIABILITY.md).
A plain lock hands a released model to whichever waiter the OS wakes; a class pressing Explain together needs
a fair line and to know its place in it. `Turns` is a reentrant lock with a first-in-first-out line: a thread
that waits hears its place (`listening`), and anyone can read how many requests each model runs and queues
(`lines`), which the pages show to the teacher.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Listener = Callable[[str, int], None]  # (model name, requests ahead in line); may raise to leave the line
LISTEN_SECONDS = 0.25  # how often a waiter hears its place again (and may leave: a cancelled request)

_every: weakref.WeakSet[Turns] = weakref.WeakSet()
_listeners = threading.local()


@dataclass(frozen=True)
class Line:
    model: str
    running: int  # 0 or 1: a model runs one request at a time
    waiting: int


class Turns:
    """A reentrant lock whose waiters take turns in arrival order. Drop-in for threading.RLock."""

    def __init__(self, name: str = "model"):
        self.name = name
        self._condition = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._line: list[int] = []  # waiting threads, first in line first
        _every.add(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._line:
                self._owner, self._depth = me, 1
                return True
            if not blocking:
                return False
            self._line.append(me)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        try:
            while True:
                with self._condition:
                    if self._owner is None and self._line[0] == me:
                        self._line.pop(0)
                        self._owner, self._depth = me, 1
                        break
                    ahead = self._line.index(me) + (self._owner is not None)
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        self._leave(me)
                        return False
                # Outside the condition: a listener may take its time or raise (its request was cancelled).
                tell(self.name, ahead)
                with self._condition:
                    if not (self._owner is None and self._line[0] == me):
                        wait = LISTEN_SECONDS if left is None else min(LISTEN_SECONDS, left)
                        self._condition.wait(wait)
        except BaseException:
            with self._condition:
                if me in self._line:
                    self._leave(me)
            raise
        try:
            tell(self.name, 0)  # its turn came: the waiter's listener stops showing a place in line
        except BaseException:
            self.release()
            raise
        return True

    def _leave(self, me: int) -> None:
        self._line.remove(me)
        self._condition.notify_all()  # the next in line may now be first

    def release(self) -> None:
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a model turn this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._condition.notify_all()

    def __enter__(self) -> Turns:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def line(self) -> Line:
        with self._condition:
            return Line(self.name, int(self._owner is not None), len(self._line))


def tell(model: str, ahead: int) -> None:
    """This thread's listener hears its place in `model`'s line (also a place heard from a model service)."""
    listener = getattr(_listeners, "current", None)
    if listener is not None:
        listener(model, ahead)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """While this thread waits for any model's turn, `listener(model, ahead)` hears its place a few times a
    second (ahead counts the request running now); an exception it raises takes the thread out of the line."""
    before = getattr(_listeners, "current", None)
    _listeners.current = listener
    try:
        yield
    finally:
        _listeners.current = before


def lines() -> list[Line]:
    """Each loaded model's requests running and waiting, summed by model name (busiest first)."""
    totals: dict[str, list[int]] = {}
    for turns in list(_every):
        line = turns.line()
        total = totals.setdefault(line.model, [0, 0])
        total[0] = max(total[0], line.running)  # a sanity check's private copies run inside their original's turn
        total[1] += line.waiting
    found = [Line(model, running, waiting) for model, (running, waiting) in totals.items()]
    return sorted(found, key=lambda line: (-line.running - line.waiting, line.model))
