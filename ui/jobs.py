"""Long model work off the script thread: a live progress bar, a Cancel button, and no lost work.

Streamlit stops a script whenever its user touches a widget. Model work done inside the script would
then be thrown away half done, and a cached function cannot drive a progress bar. So each request
runs as a job on a worker thread; the script only watches it, redrawing the bar a few times a second.
A rerun leaves the job running and the next run watches it again (the session keeps it), so nothing
is lost; the Cancel button is the one way to stop it, and it stops only once nobody else waits for
the same result. Finished results are kept per request key, like a cache: the key holds a hash of
the input bytes, so sessions share a result only when they asked exactly the same question.

While a request waits for its model (models/turns.py), its bar says how many requests are ahead of it.
Work may publish partial results as it goes (the first maps before the slow ones); a page that shows them
draws the latest, then waits for the next at its end (`watch_live`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from models.turns import listening

from .resources import releasing_memory

POLL_SECONDS = 0.25
# Requests in flight per page and server. Most of them wait in their model's line (models/turns.py), which runs
# them one at a time and tells each its place; a thread waiting there costs little.
WORKERS = 64
KEEP = 64  # finished results kept, least recently used dropped first
KEEP_SECONDS = 3600
# Per page: a text result can hold every attention map (BERT-base, 512 tokens: ~150 MB), so fewer of them.
KEEP_PER_PAGE = {"image": 64, "text": 16, "clip": 32, "audit": 8}


class Cancelled(Exception):
    """Raised inside a job's work at its next progress report once the job was cancelled."""


class Job:
    """One request's work: its future, what it reports, and who is waiting for it."""

    def __init__(self, key: Hashable, label: str):
        self.key, self.label = key, label
        self.future: Future = Future()
        self.state = (label, 0, 0)  # what is running, done, total
        self.ahead: int | None = None  # requests ahead of this one in its model's line, while it waits
        self.partial: object | None = None  # the latest result published before the end
        self.version = 0  # how many partial results were published
        self.watchers: set[str] = set()
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    def report(self, what: str, done: int, total: int) -> None:
        """The work's progress callback; raises Cancelled when the job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled()
        with self._lock:
            self.state = (what, done, total)

    def note(self, text: str) -> None:
        """A notice from where the work runs (the model service is unavailable, trying again); raises Cancelled
        as report does, so a request waiting for a service can be cancelled."""
        self.report(text, 0, 0)

    def waiting(self, model: str, ahead: int) -> None:
        """Hears the job's place in its model's line (models/turns.listening); raises Cancelled to leave it."""
        if self._cancel.is_set():
            raise Cancelled()
        with self._lock:
            if ahead:
                request = "request is" if ahead == 1 else "requests are"
                self.state = (f"Waiting for {model}: {ahead} {request} ahead of yours", 0, 0)
                self.ahead = ahead
            else:
                self.state = (f"Your turn on {model}: starting…", 0, 0)
                self.ahead = None

    def publish(self, partial: object) -> None:
        """The work's partial result so far (the first maps before the slow ones); raises Cancelled as report."""
        if self._cancel.is_set():
            raise Cancelled()
        with self._lock:
            self.partial, self.version = partial, self.version + 1

    def progress(self) -> tuple[str, float]:
        with self._lock:
            what, done, total = self.state
        return what, (min(1.0, done / total) if total else 0.0)

    def latest(self) -> tuple[int, object | None]:
        """(version, partial result) read together: a page draws the one and waits for news after the other."""
        with self._lock:
            return self.version, self.partial

    def join(self, watcher: str) -> None:
        with self._lock:
            self.watchers.add(watcher)

    def cancel(self, watcher: str) -> None:
        with self._lock:
            self.watchers.discard(watcher)
            if not self.watchers:
                self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class Jobs:
    """Every job of one server, and the finished results by key."""

    def __init__(self, workers: int = WORKERS, keep: int = KEEP, keep_seconds: float = KEEP_SECONDS):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="explain")
        self._lock = threading.Lock()
        self._running: dict[Hashable, Job] = {}
        self._done: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self.keep, self.keep_seconds = keep, keep_seconds

    def start(self, key: Hashable, work: Callable[[Job], object], label: str, watcher: str) -> Job:
        """The job for `key`: finished, already running (now also for `watcher`), or started now.

        `work(job)` reports its progress with `job.report(what, done, total)` and may `job.publish(partial)`."""
        with self._lock:
            finished = self._finished(key)
            if finished is not None:
                return finished
            job = self._running.get(key)
            if job is None or job.cancelled:
                job = Job(key, label)
                self._running[key] = job
                self._pool.submit(self._run, job, work)
            job.join(watcher)
            return job

    def _run(self, job: Job, work) -> None:
        try:
            if job.cancelled:  # while it waited for a worker
                raise Cancelled()
            with listening(job.waiting):
                result = releasing_memory(work)(job)
        except BaseException as error:  # handed to whoever watches; never lost in the pool
            self._settle(job)
            job.future.set_exception(error)
        else:
            self._settle(job, (result,))
            job.future.set_result(result)

    def _settle(self, job: Job, kept: tuple = ()) -> None:
        """No longer running, and the result (if any) kept, before anyone hears the outcome: a request
        made right after a failure starts afresh instead of joining the failed job."""
        with self._lock:
            if self._running.get(job.key) is job:
                del self._running[job.key]
            if kept:
                self._done[job.key] = (time.monotonic(), kept[0])
                while len(self._done) > self.keep:
                    self._done.popitem(last=False)

    def _finished(self, key: Hashable) -> Job | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.keep_seconds:
            del self._done[key]
            return None
        self._done.move_to_end(key)
        job = Job(key, "")
        job.future.set_result(entry[1])
        return job

    def clear(self) -> None:
        """Forget finished results (tests; running jobs carry on)."""
        with self._lock:
            self._done.clear()


@st.cache_resource
def server_jobs(page: str) -> Jobs:
    """The jobs and kept results of one page ("image", "text", "clip"), shared by every session."""
    return Jobs(keep=KEEP_PER_PAGE[page])


def watcher_id() -> str:
    context = get_script_run_ctx()
    return context.session_id if context is not None else "no-session"


def watch(job: Job, cancel_key: str, slot):
    """Block this script run until `job` is done, showing its progress and a Cancel button in `slot`.

    `slot` is an st.empty() the page makes on every run, job or not, so that what follows it keeps its
    place (a tab stays open, a chart is not sent again). Returns the job's result; raises Cancelled if it
    was cancelled, or the work's own exception. A rerun (any widget) interrupts this wait, not the job."""
    if not job.future.done():
        watching = watch_live(job, cancel_key, slot, job.version)
        while not job.future.done():
            watching.tick()
        slot.empty()
    return job.future.result()


class Watching:
    """A running job's bar and Cancel button, drawn once per run."""

    def __init__(self, job: Job, bar, seen: int):
        self.job, self.bar, self.seen = job, bar, seen

    def until_news(self) -> None:
        """Last on the page: keep the bar moving until the job publishes a result newer than the one drawn, or
        ends; then rerun the page, which draws it. A widget's rerun interrupts this wait, not the job."""
        while not self.job.future.done() and self.job.version == self.seen:
            self.tick()
        st.rerun()

    def tick(self) -> None:
        what, fraction = self.job.progress()
        self.bar.progress(fraction, text=what)  # where a rerun asked for by a widget interrupts the wait
        time.sleep(POLL_SECONDS)


def watch_live(job: Job, cancel_key: str, slot, seen: int) -> Watching:
    """The bar and Cancel button in `slot` now; the page draws the partial result `seen`, then calls
    `until_news()` last."""
    with slot.container():
        what, fraction = job.progress()
        bar = st.progress(fraction, text=what)
        st.button("Cancel", key=cancel_key, on_click=job.cancel, args=(watcher_id(),),
                  help="Stop this computation. Changing a setting meanwhile does not stop it.")
    return Watching(job, bar, seen)
