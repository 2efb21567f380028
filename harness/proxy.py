"""deploy/nginx-replicas.conf on loopback, as shipped but for its ports: nginx run as this user from a temporary
folder, in front of app replicas started by harness/live.py. Debian's nginx (`make nginx`)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .live import ROOT, free_port

NGINX = "/usr/sbin/nginx"
REPLICAS_CONF = ROOT / "deploy" / "nginx-replicas.conf"


class ReplicasProxy:
    """nginx on a free loopback port, its upstream the app replicas on `ports`. `reveal` adds a response header
    naming the replica that answered (for tests only: the shipped file does not tell browsers)."""

    def __init__(self, ports: list[int], reveal: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/xai"
        self.folder = Path(tempfile.mkdtemp(prefix="xai-nginx-"))
        site = REPLICAS_CONF.read_text()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
        site = re.sub(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, site)
        if reveal:
            site = site.replace("        proxy_pass http://xai_app;\n",
                                "        proxy_pass http://xai_app;\n        add_header X-Replica $upstream_addr always;\n")
        (self.folder / "site.conf").write_text(site)
        temp = self.folder / "temp"
        temp.mkdir()
        (self.folder / "nginx.conf").write_text(
            f"daemon off;\npid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log;\n"
            "events {}\nhttp {\n"
            f"    access_log {self.folder}/access.log;\n"
            + "".join(f"    {kind}_temp_path {temp}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + f"    include {self.folder}/site.conf;\n}}\n")
        self.process = subprocess.Popen([NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 20
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.process.stdout.read() if self.process.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"nginx did not start: {output}{self.errors()}")
            time.sleep(0.2)

    def healthy(self, timeout: float = 5) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=timeout) as response:
                return response.read() == b"ok"
        except OSError:
            return False

    def errors(self) -> str:
        log = self.folder / "error.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def available() -> bool:
    return os.access(NGINX, os.X_OK)
