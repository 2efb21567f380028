"""The model service: one Ray Serve deployment per kind of model, each replica holding its models and running the
pages' task functions (serving/tasks.py) on them, exactly as the app does in process.

A request is a stream of events (serving/ray_serve.py follows it): the work runs on a thread of the replica
while the replica's event loop passes on what the work's callbacks hear, its place in the model's line, a
heartbeat every HEARTBEAT_SECONDS and finally the result or the exception. Many requests wait in a replica at
once (max_ongoing_requests) and take turns on each model (models/turns.py), so each knows its place; add
replicas (or machines) for more models running at the same time. A caller that goes away (a cancelled
request, a timeout) stops the work at its next callback.

Requests that arrive together have their first look (predictions and the CAM family: explain_image's first
turn) run as one batch with Serve's dynamic batching (`@serve.batch`): same-size photos of one model are
stacked into one forward and one backward pass (explainers/tasks/image.first_looks), then each request
goes on alone.

Start it with `serve run serving/serve.yaml` (README, "For schools"), or from Python with `serve.run(app(...))`.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import torch
from ray import serve

from models.runtime import configure_torch
from models.turns import LISTEN_SECONDS, listening

from .errors import Stopped
from .tasks import BATCHED, LOADERS, TASKS

HEARTBEAT_SECONDS = 2.0
ONGOING = 64  # requests a replica takes at once; they wait in their model's line, which tells them their place
KEEP_MODELS = 3  # models a replica keeps loaded (a page's sidebar may name others), least recently used dropped
# First looks (predictions and the CAM family) run together at most; 1 turns batching off. On 2 CPU cores,
# EfficientNet-Lite0's first looks of 8 photos in batches of 2 or 4 ran 1.0-1.3x as fast as one by one, in one
# batch of 8 0.7-0.85x (benchmarks/serve_batching.py, three runs): past a few photos a CPU gains nothing.
BATCH = 4
BATCH_WAIT_SECONDS = 0.02  # how long the first request of a batch waits for others


class Callback:
    """Stands for a caller's callback: the replica calls it as an event, the caller calls the real one."""

    def __init__(self, name: str):
        self.name = name


class ModelService:
    def __init__(self, kind: str, preload: tuple[str, ...] = (), batch: int = BATCH,
                 batch_wait: float = BATCH_WAIT_SECONDS):
        if kind not in LOADERS:
            raise ValueError(f"unknown kind of model {kind!r}; one of {', '.join(LOADERS)}")
        configure_torch()
        self.kind = kind
        self.batch = batch
        self.batch_sizes: list[int] = []  # every batch run, for the benchmark and the tests
        self._looks.set_max_batch_size(batch)
        self._looks.set_batch_wait_timeout_s(batch_wait)
        self._models: OrderedDict[str, object] = OrderedDict()
        self._loading = threading.Lock()
        self._pool = ThreadPoolExecutor(ONGOING, thread_name_prefix=f"{kind}-work")
        # Batches on a thread of their own: the work threads wait for them, and may all be busy waiting.
        self._batcher = ThreadPoolExecutor(1, thread_name_prefix=f"{kind}-batch")
        for name in preload:
            self._model(name)

    def _model(self, name: str | tuple):
        if isinstance(name, tuple):  # (name, variant): the model's classifier for it, cached on the model
            base, variant = name
            return self._model(base).classifier(variant)
        with self._loading:
            if name not in self._models:
                self._models[name] = LOADERS[self.kind](name)
                while len(self._models) > KEEP_MODELS:
                    self._models.popitem(last=False)
            self._models.move_to_end(name)
            return self._models[name]

    async def run(self, name: str, task, args: tuple, kwargs: dict):
        """Stream ("call", callback, args), ("waiting", model, ahead), ("alive",) and last ("result", value) or
        ("error", exception) for `task(model name, *args, **kwargs)`."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()

        def send(event: tuple) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def emit(event: tuple) -> None:  # from a callback: the work stops here once its caller has gone
            if gone.is_set():
                raise Stopped()
            send(event)

        def work() -> None:
            try:
                if task not in TASKS[self.kind]:
                    raise ValueError(f"{getattr(task, '__name__', task)!r} is not a task of the {self.kind} service")
                called = {key: (lambda *a, key=value.name: emit(("call", key, a))) if isinstance(value, Callback)
                          else value for key, value in kwargs.items()}

                def place(model: str, ahead: int) -> None:
                    emit(("waiting", model, ahead))

                if task in BATCHED and self.batch > 1:
                    keyword, batched = BATCHED[task]
                    called[keyword] = lambda *request: self._look(loop, batched, place, request)
                with listening(place):
                    result = task(self._model(name), *args, **called)
                send(("result", result))
            except BaseException as error:  # the caller raises it as if the work had run there
                send(("error", _portable(error)))

        running = loop.run_in_executor(self._pool, work)
        try:
            yield ("alive",)  # taken: the caller stops counting this request as unanswered
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), HEARTBEAT_SECONDS)
                except asyncio.TimeoutError:
                    yield ("alive",)
                    continue
                yield event
                if event[0] in ("result", "error"):
                    return
        finally:
            gone.set()  # cancelled, timed out or done: a work still running stops at its next callback
            del running

    def _look(self, loop, batched, place, request: tuple):
        """A first look through the batcher. Until its batch is in the model's line (and tells its place), every
        request in that line is ahead of this one: the place heard meanwhile."""
        told = threading.Event()

        def batch_place(model: str, ahead: int) -> None:
            told.set()
            place(model, ahead)

        future = asyncio.run_coroutine_threadsafe(self._looks((batched, batch_place, *request)), loop)
        while True:
            try:
                return future.result(timeout=LISTEN_SECONDS).outcome()
            except FutureTimeout:
                line = request[0].lock.line()
                if not told.is_set() and line.running + line.waiting:
                    place(line.model, line.running + line.waiting)

    @serve.batch(max_batch_size=BATCH, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def _looks(self, requests: list[tuple]) -> list[_Outcome]:
        """Requests' first looks that arrived together, each (batch function, the request's place listener, then
        first_look's arguments: model, pixels (1, 3, h, w), layer, target, CAM methods): stacked by model, size,
        layer and methods, one batch per group, on a thread of its own; while a batch waits for its turn on the
        model, each of its requests hears its place. Each gets its own outcome: a failing group fails only its
        own requests."""
        return await asyncio.get_running_loop().run_in_executor(self._batcher, self._run_looks, requests)

    def _run_looks(self, requests: list[tuple]) -> list[_Outcome]:
        groups: dict[tuple, list[int]] = {}
        for i, (batched, _, model, pixels, layer, target, *rest) in enumerate(requests):
            groups.setdefault((batched, id(model), tuple(pixels.shape), layer, *rest), []).append(i)
        outcomes: list[_Outcome] = [None] * len(requests)  # type: ignore[list-item]
        for members in groups.values():
            batched, _, model, _, layer, _, *rest = requests[members[0]]

            def place(name: str, ahead: int, members=members) -> None:
                for i in members:
                    try:
                        requests[i][1](name, ahead)
                    except Stopped:  # a cancelled request: it stops at its own next step
                        pass

            try:
                stacked = torch.cat([requests[i][3] for i in members])
                with listening(place):
                    results = batched(model, stacked, layer, [requests[i][5] for i in members], *rest)
                self.batch_sizes.append(len(members))
                for i, result in zip(members, results):
                    outcomes[i] = _Outcome(result)
            except Exception as error:
                for i in members:
                    outcomes[i] = _Outcome(error=error)
        return outcomes

    async def batches(self) -> list[int]:
        """The size of every batch of first looks this replica ran."""
        return list(self.batch_sizes)


class _Outcome:
    def __init__(self, value=None, error: Exception | None = None):
        self.value, self.error = value, error

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.value


def _portable(error: BaseException) -> BaseException:
    """The exception itself when it survives pickling; else a RuntimeError naming its type (no message: it
    could hold the user's data)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(type(error).__name__)


def app(args: dict | None = None):
    """A Serve application for one kind of model (image, text or clip):
    `serve run serving.deployment:app kind=image preload=resnet-50`, or from serving/serve.yaml. `preload`
    (comma-separated names) loads models before the first request; `batch` (default 4; 1: off) and
    `batch_wait_ms` (default 20) set the batching of first looks; `num_cpus` (default 1) is what Ray books
    for each replica (serve.yaml's ray_actor_options say the same)."""
    args = dict(args or {})
    kind = args.get("kind", "image")
    preload = tuple(n.strip() for n in str(args.get("preload", "")).split(",") if n.strip())
    batch = int(args.get("batch", BATCH))
    batch_wait = float(args.get("batch_wait_ms", BATCH_WAIT_SECONDS * 1000)) / 1000
    deployment = serve.deployment(ModelService, name=kind, max_ongoing_requests=ONGOING,
                                  ray_actor_options={"num_cpus": float(args.get("num_cpus", 1))})
    return deployment.bind(kind, preload, batch, batch_wait)
