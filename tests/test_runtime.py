"""Process-wide settings for a server that many sessions share: torch's threads, and memory handed back."""

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


def test_memory_an_explanation_freed_in_a_session_thread_goes_back_to_the_os(bundled, chelsea):
    # Integrated Gradients needs about 1 GB for a moment; glibc keeps what a thread frees in that thread's arena.
    worker = threading.Thread(target=explain_image, args=(bundled, chelsea, ("integrated-gradients",)))
    worker.start()
    worker.join()
    held = resident_mb()
    release_freed_memory()
    assert held - resident_mb() > 200, f"{held:.0f} MB before, {resident_mb():.0f} MB after"
