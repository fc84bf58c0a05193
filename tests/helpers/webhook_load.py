"""The real `sre-llm collect serve` as a child process, and a lean asyncio HTTP/1.1 client to load it.

Shared by tests/test_collect_receiver.py and bench/receiver_load.py. The client is raw asyncio
streams (keep-alive, pre-built requests) rather than httpx: on 2 shared cores the load generator
must cost much less than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "receiver-test-token"


class ReceiverProcess:
    """`python -m sre_llm collect serve` on 127.0.0.1, port 0."""

    def __init__(self, store: Path, read_timeout: float = 10.0, extra: tuple[str, ...] = ()):
        env = {**os.environ, "AM_TOKEN": TOKEN}
        self.store = store
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sre_llm", "collect", "serve", "--store", str(store), "--listen", "127.0.0.1:0",
             "--token", "env:AM_TOKEN", "--read-timeout", str(read_timeout), "--quiet", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "listening on http://127.0.0.1:PORT/ storing to STORE"
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise AssertionError(f"collect serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[2]
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self, field: str) -> int:
        """A number from /proc/<pid>/status (VmRSS in kB, Threads)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def payload(n: int, labels: int = 6) -> dict:
    """A valid Alertmanager v4 webhook, unique by ``n`` (its alert's ``seq`` label)."""
    from sre_llm.dataset.records import fingerprint

    lab = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": f"web-{n}", "seq": str(n),
           "severity": "warning", **{f"l{i}": f"v{i}" for i in range(max(0, labels - 5))}}
    return {
        "version": "4", "receiver": "sre-llm", "status": "firing", "externalURL": "http://alertmanager:9093",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}', "truncatedAlerts": 0,
        "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": {"alertname": "KubePodCrashLooping"},
        "commonAnnotations": {},
        "alerts": [{"status": "firing", "labels": lab, "fingerprint": fingerprint(lab),
                    "annotations": {"summary": f"pod web-{n} is crash looping", "lambda_function": "pod-restart",
                                    "lambda_parameters": json.dumps({"name": f"web-{n}", "namespace": "shop",
                                                                     "type": "pod"})},
                    "startsAt": "2025-05-01T12:00:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=up"}],
    }


def request_bytes(body: bytes, path: str = "/", token: str | None = TOKEN) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def post_all(port: int, bodies: list[bytes], clients: int) -> list[tuple[int, float, int]]:
    """POST every body with ``clients`` keep-alive connections; (index, latency s, status) each.
    A connection that fails is reopened; its in-flight request counts as status 0 (not acknowledged)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    results: list[tuple[int, float, int]] = []

    async def client() -> None:
        reader = writer = None
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request_bytes(bodies[i]))
                status, _ = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                status = 0
                if writer is not None:
                    writer.close()
                reader = writer = None
            results.append((i, time.perf_counter() - t0, status))
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


def stored_seqs(store: Path) -> list[str]:
    """The ``seq`` label of every complete stored payload (a line cut by a kill is skipped)."""
    out = []
    path = store / "webhook.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        out.extend(a["labels"]["seq"] for a in entry["payload"]["alerts"])
    return out
