"""The model service's faults as the app meets them, with a stand-in for Ray Serve's streaming handle: an address
where nothing listens, a service that never takes the request, one that goes silent mid-request. Each ends
in a message, in seconds, never a hang. (A killed replica is in test_serving.py, on a real Ray.)"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import ray
from ray.serve.exceptions import RequestCancelledError

import serving
from serving import Remote, ServiceTimeout, ServiceUnavailable
from serving.ray_serve import RayServe


class Stream:
    """Ray Serve's response generator: yields `events`, then blocks until cancelled, as a silent service does."""

    def __init__(self, events):
        self.events, self.cancelled = list(events), threading.Event()

    def __iter__(self):
        yield from self.events
        self.cancelled.wait()
        raise RequestCancelledError("stand-in")

    def cancel(self):
        self.cancelled.set()


def service_answering(monkeypatch, events, **limits) -> tuple[RayServe, list[Stream]]:
    """The app's model service, its handle answering every request with a Stream of `events`."""
    sent: list[Stream] = []

    def remote(*request):
        sent.append(Stream(events))
        return sent[-1]

    service = RayServe("127.0.0.1:1", **limits)
    service._handle = lambda kind: SimpleNamespace(run=SimpleNamespace(remote=remote))
    monkeypatch.setattr(serving, "_service", lambda: service)
    return service, sent


MODEL = Remote("image", "efficientnet-lite0", card=None)


def test_an_address_where_nothing_listens_is_unavailable_at_once(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    service = RayServe("127.0.0.1:1")  # port 1: nothing listens
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=r"No model service answers at 127\.0\.0\.1:1 \(XAI_RAY_ADDRESS\)\. Start it \(make serve"):
        service.describe("image", "resnet-50")
    assert time.monotonic() - start < 5


def test_a_request_nobody_takes_is_sent_again_then_given_up_with_a_message(monkeypatch):
    service, sent = service_answering(monkeypatch, [], taken=0.5, give_up=3, retry=0.2)
    notices = []
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="did not take this request in 3 seconds"):
        serving.run(MODEL, print, notice=notices.append)
    assert time.monotonic() - start < 6
    assert len(sent) >= 3 and all(stream.cancelled.is_set() for stream in sent)
    assert notices[0] == "The image model service is unavailable; trying again (attempt 2)…"


def test_a_notice_that_raises_gives_up_at_once(monkeypatch):
    service, sent = service_answering(monkeypatch, [], taken=0.3, give_up=60, retry=0.1)

    class Cancelled(Exception):
        pass

    def notice(text):
        raise Cancelled()

    with pytest.raises(Cancelled):
        serving.run(MODEL, print, notice=notice)
    assert len(sent) == 1


def test_a_service_that_goes_silent_mid_request_times_out_with_a_message(monkeypatch):
    heard = []
    service, sent = service_answering(monkeypatch, [("alive",), ("call", "progress", ("Predicting", 0, 1))], silent=0.5)
    start = time.monotonic()
    with pytest.raises(ServiceTimeout, match="stopped answering: nothing from it for 0.5 seconds"):
        serving.run(MODEL, print, progress=lambda *what: heard.append(what))
    assert time.monotonic() - start < 3
    assert heard == [("Predicting", 0, 1)] and len(sent) == 1  # taken, then silent: not sent again


def test_callbacks_stay_here_and_the_result_comes_back(monkeypatch):
    service, sent = service_answering(monkeypatch, [("alive",), ("waiting", "m", 2), ("call", "partial", ("half",)),
                                       ("result", "whole")])
    partials, places = [], []
    from models.turns import listening

    with listening(lambda model, ahead: places.append((model, ahead))):
        assert serving.run(MODEL, print, 1, partial=partials.append, seed=3) == "whole"
    assert partials == ["half"] and places == [("m", 2)]


def test_the_backend_is_read_from_the_environment(monkeypatch):
    try:
        monkeypatch.setenv("XAI_BACKEND", "gpu-cloud")
        serving.backend.cache_clear()
        with pytest.raises(ValueError, match="XAI_BACKEND must be one of in-process, ray-serve"):
            serving.backend()
        monkeypatch.delenv("XAI_BACKEND")
        serving.backend.cache_clear()
        assert serving.backend() == "in-process"
    finally:
        serving.backend.cache_clear()
