"""Start the app as a user meets it: `streamlit run app.py` on loopback, offline, with its production
config; and Debian's Chromium the way this machine can run it.

The server's output is kept in memory (tests read it to prove nothing private was logged), and a
watcher samples its resident memory and health check while load runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google on a closed network.
CHROMIUM_OPTIONS = {
    "executable_path": CHROMIUM,
    "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
}
STREAMLIT = (sys.executable, "-m", "streamlit")


def resident_mb(pid: int | str = "self") -> float:
    """A process's resident memory, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`<launcher> run app.py` on a free loopback port; `launcher` may be a script that wraps Streamlit."""

    def __init__(self, launcher=STREAMLIT, startup_seconds: float = 90, base_path: str = "", port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}" + (f"/{base_path}" if base_path else "")
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [*launcher, "run", "app.py", "--server.port", str(self.port), "--server.address", "127.0.0.1",
             *(("--server.baseUrlPath", base_path) if base_path else ())],
            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + startup_seconds
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Streamlit server did not become healthy:\n" + "".join(self.output[-30:]))
            time.sleep(0.3)

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def healthy(self, timeout: float = 5) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=timeout) as response:
                return response.read() == b"ok"
        except OSError:
            return False

    def rss_mb(self) -> float:
        return resident_mb(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Watch:
    """Samples a server's resident memory (every 0.1 s) and health check (every second) in a thread."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.peak_mb = server.rss_mb()
        self.health_checks = 0
        self.health_failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last_health = 0.0
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.server.rss_mb())
            if time.monotonic() - last_health >= 1:
                last_health = time.monotonic()
                self.health_checks += 1
                self.health_failures += not self.server.healthy(timeout=5)
            self._stop.wait(0.1)
