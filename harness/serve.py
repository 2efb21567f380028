"""The model service as `make serve` starts it: a Ray head on this machine and the deployments of
serving/serve.yaml, offline; `ray stop` at the end. For the browser tests and the load benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .live import ROOT


class ModelService:
    def __init__(self, startup_seconds: float = 180):
        bin_dir = Path(sys.executable).parent
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        self.ray, self.serve = str(bin_dir / "ray"), str(bin_dir / "serve")
        self._run(self.ray, "start", "--head", "--disable-usage-stats", "--include-dashboard=false")
        try:
            self._run(self.serve, "run", "--non-blocking", "serving/serve.yaml")
            self._wait_until_ready(startup_seconds)
        except BaseException:
            self.stop()
            raise

    def _run(self, *command) -> str:
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def _wait_until_ready(self, seconds: float) -> None:
        """Until every application runs (asked through Ray: `serve status` would need Ray's dashboard)."""
        ask = ("import ray, time\nfrom ray import serve\nray.init(address='auto', log_to_driver=False)\n"
               f"deadline = time.monotonic() + {seconds}\n"
               "while time.monotonic() < deadline:\n"
               "    apps = serve.status().applications\n"
               "    if apps and all(a.status == 'RUNNING' for a in apps.values()):\n"
               "        raise SystemExit(0)\n"
               "    time.sleep(1)\n"
               "raise SystemExit(f'not running: {apps}')\n")
        done = subprocess.run([sys.executable, "-c", ask], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=seconds + 60)
        if done.returncode:
            raise RuntimeError(f"the model service did not start:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def stop(self) -> None:
        subprocess.run([self.ray, "stop", "--force"], cwd=ROOT, env=self.env, capture_output=True, timeout=120)
