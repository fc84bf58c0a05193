"""A real OCI registry for tests: Debian's ``docker-registry`` (the CNCF distribution registry)
on 127.0.0.1, started and stopped by the test session. Shared by the registry and pod tests."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx

REGISTRY = shutil.which("docker-registry")
if REGISTRY is None and os.environ.get("CI"):
    raise RuntimeError("docker-registry is not installed: run scripts/setup-system.sh (CI must run these tests)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, extra: str = "", scheme: str = "http", ca: Path | None = None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = folder / "storage"
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{extra}"
        )
        self.log = open(folder / "registry.log", "wb")  # noqa: SIM115 - open while the registry runs
        self.proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{scheme}://{self.host}/v2/", verify=ssl.create_default_context(cafile=str(ca)) if ca else True,
                             timeout=1).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {(folder / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def blob(self, digest: str) -> Path:
        hexed = digest.split(":")[1]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexed[:2] / hexed / "data"
