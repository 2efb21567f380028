"""The first figures fast: an image request publishes the Grad-CAM family before the slower methods, each
slower map as it comes and every map's faithfulness after it, and the final report is what one call without
publishing gives. A request that waits for its model shows its place in line, and leaves the line when
cancelled."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from explainers.tasks.image import ImageSettings, explain_image
from ui.jobs import Cancelled, Jobs

pytestmark = pytest.mark.usefixtures("single_thread")
SETTINGS = ImageSettings(ig_steps=16, smoothgrad_samples=4, faithfulness=True, faithfulness_steps=10)
METHODS = ("gradcam", "gradcam++", "integrated-gradients", "smoothgrad")


@pytest.fixture(scope="module")
def published(bundled, chelsea):
    reports = []
    final = explain_image(bundled, chelsea, METHODS, settings=SETTINGS, partial=reports.append)
    return reports, final


def test_the_grad_cam_family_comes_first_then_each_slow_map_and_its_faithfulness(published):
    reports, final = published
    steps = [([e.method for e in r.explanations], r.pending, [e.faithfulness is not None for e in r.explanations])
             for r in reports]
    assert steps == [
        (["gradcam", "gradcam++"], ("integrated-gradients", "smoothgrad"), [False, False]),
        (["gradcam", "gradcam++"], ("integrated-gradients", "smoothgrad"), [True, True]),
        (["gradcam", "gradcam++", "integrated-gradients"], ("smoothgrad",), [True, True, False]),
        (["gradcam", "gradcam++", "integrated-gradients"], ("smoothgrad",), [True, True, True]),
        (["gradcam", "gradcam++", "integrated-gradients", "smoothgrad"], (), [True, True, True, False]),
    ]
    assert all(r.measuring for r in reports) and not final.measuring and final.pending == ()
    assert [e.method for e in final.explanations] == list(METHODS)
    # Nothing shown early is recomputed: the maps published first are the final ones, the same objects' values.
    for early, late in zip(reports[1].explanations, final.explanations):
        np.testing.assert_array_equal(early.scores, late.scores)
        assert early.faithfulness == late.faithfulness


def test_publishing_as_it_goes_gives_the_report_of_one_call(bundled, chelsea, published):
    _, final = published
    whole = explain_image(bundled, chelsea, METHODS, settings=SETTINGS)
    assert whole.predictions == final.predictions and whole.target == final.target
    for one, other in zip(whole.explanations, final.explanations):
        np.testing.assert_array_equal(one.scores, other.scores)
        assert one.faithfulness.as_dict() == other.faithfulness.as_dict()  # every curve and the references'
        assert other.faithfulness.references is final.explanations[0].faithfulness.references  # computed once


def test_a_waiting_request_sees_its_place_and_leaves_the_line_when_cancelled(bundled, chelsea):
    jobs = Jobs(workers=4)
    bundled.lock.acquire()  # another session's request is running on the model
    try:
        first = jobs.start("a", lambda job: explain_image(bundled, chelsea, ("gradcam",), progress=job.report,
                                                          partial=job.publish), "Explaining…", "session a")
        deadline = time.monotonic() + 5
        while "ahead" not in first.progress()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = jobs.start("b", lambda job: explain_image(bundled, chelsea, ("gradcam",)), "Explaining…", "session b")
        while "2 requests are ahead" not in second.progress()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        model = bundled.info.name
        assert first.progress()[0] == f"Waiting for {model}: 1 request is ahead of yours"
        assert (first.ahead, second.ahead) == (1, 2) and bundled.lock.line().waiting == 2
        first.cancel("session a")  # nobody else waits for it: it leaves the line, the next moves up
        with pytest.raises(Cancelled):
            first.future.result(timeout=5)
        while second.ahead != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert bundled.lock.line().waiting == 1
    finally:
        bundled.lock.release()
    report = second.future.result(timeout=30)
    assert [e.method for e in report.explanations] == ["gradcam"] and first.partial is None
