"""A model's line: one request at a time, first come first served, each waiter hears its place, a cancelled
waiter leaves the line, and the teacher's count per model is right."""

from __future__ import annotations

import threading
import time

import pytest

from models.turns import Turns, lines, listening


def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def queue_up(turns: Turns, count: int, heard: dict, served: list, leave: dict | None = None):
    """`count` threads that line up one after another (each once the one before is waiting) and record the
    places they hear and the order they are served in; thread n leaves the line once `leave[n]` is set."""
    leave = leave or {}
    threads = []
    for number in range(count):
        def request(number=number):
            def listener(model: str, ahead: int) -> None:
                heard.setdefault(number, []).append((model, ahead))
                if number in leave and leave[number].is_set():
                    raise RuntimeError("cancelled")
            try:
                with listening(listener), turns:
                    served.append(number)
            except RuntimeError:
                served.append(f"left {number}")

        thread = threading.Thread(target=request)
        thread.start()
        threads.append(thread)
        until(lambda: turns.line().waiting == number + 1)
    return threads


def test_waiters_hear_their_place_and_are_served_in_arrival_order():
    turns, heard, served = Turns("Test model"), {}, []
    turns.acquire()  # a request running
    threads = queue_up(turns, 3, heard, served)
    until(lambda: all(heard.get(n) for n in range(3)))
    assert [heard[n][-1] for n in range(3)] == [("Test model", 1), ("Test model", 2), ("Test model", 3)]
    assert turns.line().running == 1 and turns.line().waiting == 3
    turns.release()
    for thread in threads:
        thread.join(5)
    assert served == [0, 1, 2]
    # Each moved up as the ones before were served, and heard its turn come (0 ahead) before it ran.
    assert [ahead for _, ahead in heard[2]] == sorted((ahead for _, ahead in heard[2]), reverse=True)
    assert all(heard[n][-1][1] == 0 for n in range(3))
    assert turns.line().running == turns.line().waiting == 0


def test_a_waiter_whose_listener_raises_leaves_the_line_and_the_next_moves_up():
    turns, heard, served, cancel = Turns("Test model"), {}, [], threading.Event()
    turns.acquire()
    threads = queue_up(turns, 3, heard, served, leave={1: cancel})
    until(lambda: heard.get(2))
    assert heard[2][-1] == ("Test model", 3)
    cancel.set()
    threads[1].join(5)
    assert served == ["left 1"] and turns.line().waiting == 2
    until(lambda: heard[2][-1] == ("Test model", 2))  # was third in line behind the running one, now second
    turns.release()
    for thread in threads:
        thread.join(5)
    assert served == ["left 1", 0, 2]


def test_it_is_reentrant_and_a_timeout_gives_up_its_place():
    turns = Turns("Test model")
    with turns, turns:  # a model call inside another, on the same thread
        assert turns.line().running == 1
        outcome = []
        other = threading.Thread(target=lambda: outcome.append(turns.acquire(timeout=0.2)))
        other.start()
        other.join(5)
        assert outcome == [False] and turns.line().waiting == 0
        assert not turns.acquire(blocking=False) or turns.release() is None  # the owner may take it again
    assert turns.acquire(timeout=1)
    turns.release()
    with pytest.raises(RuntimeError):
        turns.release()


def test_the_count_per_model_adds_up_every_copy_of_it():
    first, copy = Turns("Counted model"), Turns("Counted model")
    first.acquire()
    heard, served = {}, []
    threads = queue_up(first, 2, heard, served)
    counted = {line.model: line for line in lines()}["Counted model"]
    assert (counted.running, counted.waiting) == (1, 2)
    with copy:  # a sanity check's private copy runs inside its original's turn: still one request running
        counted = {line.model: line for line in lines()}["Counted model"]
        assert (counted.running, counted.waiting) == (1, 2)
    first.release()
    for thread in threads:
        thread.join(5)
    counted = {line.model: line for line in lines()}["Counted model"]
    assert (counted.running, counted.waiting) == (0, 0)
