"""The app's side of the model service: describe a model and run tasks on it in a Ray Serve deployment
(serving/deployment.py), calling the task's callbacks here as their events arrive.

Faults become messages, never hangs: a Ray cluster that does not answer at its address is found in a second
(a plain TCP check first: ray.init itself waits minutes); a request no replica takes within TAKEN_SECONDS,
or that breaks because its replica died (killed, restarting), is sent again, with a notice, until
GIVE_UP_SECONDS have passed (ServiceUnavailable); a request taken that then stays silent for
SILENT_SECONDS (the replica sends a heartbeat every 2 s) is cancelled (ServiceTimeout). A retried request
starts afresh in a new replica, so its result is always its own.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from models.turns import tell

from .cards import Remote
from .deployment import Callback
from .errors import ServiceTimeout, ServiceUnavailable
from .tasks import DESCRIBE

APP_PREFIX = "xai-"  # applications xai-image, ...: one per kind, each with one deployment named after the kind
TAKEN_SECONDS = 15.0
SILENT_SECONDS = 60.0
GIVE_UP_SECONDS = 120.0
RETRY_SECONDS = 2.0


class _Unanswered(Exception):
    """No replica took the request in time, or its replica broke: worth sending again."""


class RayServe:
    def __init__(self, address: str, taken: float = TAKEN_SECONDS, silent: float = SILENT_SECONDS,
                 give_up: float = GIVE_UP_SECONDS, retry: float = RETRY_SECONDS):
        self.address = address
        self.taken, self.silent, self.give_up, self.retry = taken, silent, give_up, retry
        self._connecting = threading.Lock()

    def describe(self, kind: str, name: str | tuple) -> Remote:
        """The model's card, from one attempt (a page waits for it): ServiceUnavailable if no replica answers."""
        return Remote(kind, name, self._attempt(kind, name, DESCRIBE[kind], (), {}, {}))

    def run(self, model: Remote, task: Callable, args: tuple, kwargs: dict, notice: Callable[[str], None] | None):
        callbacks = {key: value for key, value in kwargs.items() if callable(value)}
        sent = {key: Callback(key) if key in callbacks else value for key, value in kwargs.items()}
        start = time.monotonic()
        attempt = 1
        while True:
            try:
                return self._attempt(model.kind, model.name, task, args, sent, callbacks)
            except ServiceUnavailable:
                if time.monotonic() - start + self.retry > self.give_up:
                    raise ServiceUnavailable(
                        f"The {model.kind} model service is unavailable: it did not take this request in "
                        f"{self.give_up:g} seconds. The app still works; try again in a minute.") from None
            attempt += 1
            if notice is not None:
                notice(f"The {model.kind} model service is unavailable; trying again (attempt {attempt})…")
            time.sleep(self.retry)

    def _attempt(self, kind: str, name: str, task, args: tuple, sent: dict, callbacks: dict):
        """One request, followed to its end. ServiceUnavailable when nobody took it or its replica broke."""
        from ray.exceptions import RayError
        from ray.serve.exceptions import RayServeException

        broken = (RayError, RayServeException)  # the service's own failures: the work's come as ("error", ...)
        try:
            generator = self._handle(kind).run.remote(name, task, args, sent)
        except broken as error:
            raise ServiceUnavailable(self._unavailable(kind, error)) from None
        watch = _Silence(generator, self.taken, self.silent)
        try:
            for event in watch.events():
                match event:
                    case ("call", key, values):
                        _passing_on(generator, callbacks[key], *values)
                    case ("waiting", model, ahead):
                        _passing_on(generator, tell, model, ahead)
                    case ("result", value):
                        return value
                    case ("error", error):
                        raise error
        except broken as error:
            if watch.fired and watch.heard:
                raise ServiceTimeout(f"The {kind} model service stopped answering: nothing from it for "
                                     f"{self.silent:g} seconds. Try again; if it keeps happening, tell "
                                     "whoever runs the server.") from None
            raise ServiceUnavailable(self._unavailable(kind, error)) from None
        finally:
            watch.stop()
        raise ServiceUnavailable(f"The {kind} model service ended this request without a result.")

    def _unavailable(self, kind: str, error: Exception) -> str:
        return f"The {kind} model service is unavailable ({type(error).__name__})."

    def _handle(self, kind: str):
        self._connect()
        from ray import serve

        return serve.get_deployment_handle(kind, app_name=APP_PREFIX + kind).options(stream=True)

    def _connect(self) -> None:
        import ray

        with self._connecting:
            if ray.is_initialized():
                return
            host, port = _gcs(self.address)
            try:  # ray.init waits minutes for an address where nothing listens
                socket.create_connection((host, port), timeout=2).close()
            except OSError:
                where = "on this machine" if self.address == "auto" else f"at {self.address} (XAI_RAY_ADDRESS)"
                raise ServiceUnavailable(f"No model service answers {where}. Start it (make serve; README, "
                                         "“For schools”) or unset XAI_BACKEND.") from None
            ray.init(address=self.address, namespace="serve", log_to_driver=False, logging_level="warning")


def _gcs(address: str) -> tuple[str, int]:
    """(host, port) of the Ray cluster at `address`; "auto" is the one `ray start` started on this machine, whose
    address Ray keeps in its temporary folder (or RAY_ADDRESS)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            try:
                address = (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster").read_text().strip()
            except OSError:
                address = "127.0.0.1:6379"
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port) if port.isdigit() else 6379


def _passing_on(generator, callback, *values) -> None:
    """Call `callback` here; if it raises (the request was cancelled), stop the work in the replica too."""
    try:
        callback(*values)
    except BaseException:
        generator.cancel()
        raise


class _Silence:
    """Follows a request's events and cancels it when it stays silent: `taken` seconds before its first
    event, `silent` seconds between later ones."""

    def __init__(self, generator, taken: float, silent: float):
        self.generator, self.taken, self.silent = generator, taken, silent
        self.heard = False
        self.fired = False
        self._last = time.monotonic()
        self._done = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="serve-silence").start()

    def events(self):
        for event in self.generator:
            self.heard, self._last = True, time.monotonic()
            yield event

    def _watch(self) -> None:
        while not self._done.wait(0.25):
            limit = self.silent if self.heard else self.taken
            if time.monotonic() - self._last > limit:
                self.fired = True
                self.generator.cancel()
                return

    def stop(self) -> None:
        self._done.set()
