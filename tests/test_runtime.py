"""Process-wide settings for a server that many sessions share: torch's threads, and memory handed back."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from explainers.tasks.image import explain_image
from harness.live import resident_mb
from models.runtime import release_freed_memory

ROOT = Path(__file__).resolve().parents[1]


def test_torch_threads_are_set_once_for_the_whole_process():
    script = (
        "import os, torch\n"
        "from models.runtime import configure_torch\n"
        "configure_torch(); first = torch.get_num_threads(), torch.get_num_interop_threads()\n"
        "torch.set_num_threads(1); configure_torch()\n"  # a second call (another session) changes nothing
        "print(*first, torch.get_num_threads(), os.cpu_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    threads, interop, later, cores = map(int, result.stdout.split())
    assert (threads, interop, later) == (cores, 1, 1)


def test_numpys_blas_runs_on_one_thread_while_torch_keeps_its_own():
    """numpy's idle BLAS threads would spin and slow the next forward pass (models/runtime.py)."""
    script = (
        "import json, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from models.runtime import configure_torch\n"
        "before = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "configure_torch()\n"
        "import scipy.linalg\n"  # loaded afterwards (by scikit-image, LIME's regression): one thread too
        "after = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "print(json.dumps([before, after, torch.get_num_threads()]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"})
    before, after, torch_threads = json.loads(result.stdout)
    cores = os.cpu_count()
    assert before and all(n == cores for n in before) and torch_threads == cores
    assert len(after) >= len(before) and all(n == 1 for n in after)


def test_memory_an_explanation_freed_in_a_session_thread_goes_back_to_the_os(bundled, chelsea):
    # Integrated Gradients needs about 1 GB for a moment; glibc keeps what a thread frees in that thread's arena.
    worker = threading.Thread(target=explain_image, args=(bundled, chelsea, ("integrated-gradients",)))
    worker.start()
    worker.join()
    held = resident_mb()
    release_freed_memory()
    assert held - resident_mb() > 200, f"{held:.0f} MB before, {resident_mb():.0f} MB after"
