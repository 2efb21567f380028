"""Where an audit's chunks run: in this process (the default), or on Ray Data across a cluster.

Both call the same per-batch function (batches.Auditor) on the same chunks, so their per-item
results agree. On Ray, every actor of the pool loads its own model once and takes one chunk at a
time; chunks travel as JSON rows and results come back to the driver, which writes results.jsonl
and the report. Only item names travel: the workers read the data from the same path themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .batches import Auditor
from .config import AuditConfig
from .dataset import Source


def run_local(auditor: Auditor, chunks: Sequence[list[dict]], stop: Callable[[], None] | None = None
              ) -> Iterator[list[dict]]:
    for chunk in chunks:
        if stop is not None:
            stop()
        yield auditor(chunk, stop)


class _RayAuditor:
    """One Ray actor: a model of its own, one chunk per call."""

    def __init__(self, config: AuditConfig, source: Source):
        self.auditor = Auditor(config, source)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        results = [json.dumps(self.auditor(json.loads(chunk))) for chunk in batch["chunk"]]
        return {"results": np.array(results, dtype=object)}


CHECKOUT = str(Path(__file__).resolve().parents[2])  # workers import this code from the same path


def start_ray(address: str | None = None) -> None:
    """Join the cluster at `address`, or start Ray on this machine; once per process."""
    import ray

    if ray.is_initialized():
        return
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"XAI_TORCH_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                                       "PYTHONPATH": CHECKOUT}})
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the CLI draws its own progress bar
    ray.data.DataContext.get_current().enable_progress_bars = False


def run_ray(config: AuditConfig, source: Source, chunks: Sequence[list[dict]], address: str | None = None
            ) -> Iterator[list[dict]]:
    """Chunks through `map_batches` over an actor pool; `address` joins a running cluster, None starts
    Ray on this machine. The pool leaves one CPU free: on a small machine a pool that takes every CPU
    starves Ray Data's own read tasks and the job stalls."""
    import ray

    if not chunks:
        return
    start_ray(address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    pool = max(1, min(len(chunks), cpus - 1))
    rows = ray.data.from_items([{"chunk": json.dumps(chunk)} for chunk in chunks])
    results = rows.map_batches(
        _RayAuditor, fn_constructor_args=(config, source.without_bytes()), batch_size=1,
        concurrency=pool, num_cpus=1, batch_format="numpy",
    )
    for batch in results.iter_batches(batch_size=1, batch_format="numpy"):
        for text in batch["results"]:
            yield json.loads(text)
