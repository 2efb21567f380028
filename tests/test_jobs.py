"""Long work off the script thread: progress, cancelling only when nobody else waits, results kept, errors handed on."""

from __future__ import annotations

import threading

import pytest

from ui.jobs import Cancelled, Jobs


def waiting_work(release: threading.Event, started: threading.Event, steps: int = 1000):
    def work(job):
        started.set()
        for done in range(1, steps + 1):
            release.wait(0.01)
            job.report("counting", done, steps)
        return "finished"

    return work


def test_progress_is_seen_while_it_runs_and_the_result_kept_for_the_next_asker():
    jobs, release, started = Jobs(workers=2), threading.Event(), threading.Event()
    job = jobs.start("key", waiting_work(release, started, 50), "Queued", "session a")
    assert job.progress() == ("Queued", 0.0)
    started.wait(5)
    release.set()
    assert job.future.result(timeout=10) == "finished"
    assert job.progress() == ("counting", 1.0)
    again = jobs.start("key", lambda job: pytest.fail("computed twice"), "Queued", "session b")
    assert again.future.result(timeout=1) == "finished"


def test_a_rerun_joins_the_running_job_instead_of_starting_another():
    jobs, release, started = Jobs(workers=2), threading.Event(), threading.Event()
    first = jobs.start("key", waiting_work(release, started), "", "session a")
    second = jobs.start("key", lambda job: pytest.fail("started twice"), "", "session a")
    assert second is first
    release.set()
    assert first.future.result(timeout=30) == "finished"


def test_cancel_stops_the_work_only_when_nobody_else_waits():
    jobs, release, started = Jobs(workers=2), threading.Event(), threading.Event()
    job = jobs.start("key", waiting_work(release, started), "", "session a")
    assert jobs.start("key", waiting_work(release, started), "", "session b") is job
    started.wait(5)
    job.cancel("session a")
    assert not job.cancelled  # session b still waits for it
    job.cancel("session b")
    assert job.cancelled
    with pytest.raises(Cancelled):
        job.future.result(timeout=10)
    # Cancelled work is not kept: asking again starts afresh.
    fresh = jobs.start("key", lambda job: "again", "", "session a")
    assert fresh is not job and fresh.future.result(timeout=10) == "again"


def test_a_job_cancelled_while_queued_never_runs():
    jobs, release, started = Jobs(workers=1), threading.Event(), threading.Event()
    busy = jobs.start("busy", waiting_work(release, started), "", "a")
    ran = []
    queued = jobs.start("queued", lambda job: ran.append(1), "", "b")
    queued.cancel("b")
    release.set()
    busy.future.result(timeout=30)
    with pytest.raises(Cancelled):
        queued.future.result(timeout=10)
    assert not ran


def test_a_failure_reaches_the_watcher_and_is_not_kept():
    jobs = Jobs(workers=1)

    def failing(job):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        jobs.start("key", failing, "", "a").future.result(timeout=10)
    assert jobs.start("key", lambda job: "works", "", "a").future.result(timeout=10) == "works"


def test_old_results_go_first_when_the_store_is_full():
    jobs = Jobs(workers=1, keep=2)
    for key in ("a", "b", "c"):
        jobs.start(key, lambda job, key=key: key, "", "s").future.result(timeout=10)
    assert jobs.start("c", lambda job: "recomputed", "", "s").future.result(timeout=10) == "c"
    assert jobs.start("a", lambda job: "recomputed", "", "s").future.result(timeout=10) == "recomputed"


def test_each_page_keeps_its_own_results_and_the_text_page_fewer():
    from ui.jobs import server_jobs

    assert server_jobs("image") is server_jobs("image") and server_jobs("image") is not server_jobs("text")
    assert server_jobs("text").keep == 16 < server_jobs("image").keep  # a text result may hold ~150 MB of attention
