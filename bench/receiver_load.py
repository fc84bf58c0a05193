"""Benchmark: sustained webhook payloads/s and latency of `sre-llm collect serve` (issue 16).

The real receiver as a child process (hypercorn, strict v4 check, group-committed fsync), loaded
by keep-alive clients (raw asyncio streams, from tests/helpers/webhook_load.py) posting distinct
valid Alertmanager payloads for ``--seconds`` at 1, 50 and 500 concurrent clients. Two baselines
in the same run:

- ``fsync_per_payload``: one write + fsync per payload in a loop, no HTTP at all: the ceiling of
  the receiver it replaced (one fsync per request) on this disk;
- ``bare_server``: the same load against hypercorn serving an app that answers 200 and does
  nothing: the ceiling of the server stack on this machine.

Target: ≥ 1,000 payloads/s at 50 clients (2 cores, load generator included). Prints one JSON object.

    python bench/receiver_load.py [--seconds 3] [--levels 1,50,500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sre_llm.collect.journal import Journal
from tests.helpers.webhook_load import (
    ReceiverProcess,
    payload,
    read_response,
    request_bytes,
    stored_seqs,
)

TARGET = 1000.0
BARE = """
import sys
from sre_llm.serve import server
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})
sock = server.bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)
server.run(app, sock, 20.0, http1_only=True)
"""


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def sustain(port: int, clients: int, seconds: float, bodies: list[bytes]) -> dict:
    """``clients`` keep-alive connections posting for ``seconds``; throughput and latency."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    reconnects = 0

    async def client() -> None:
        nonlocal reconnects
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                body = bodies[next(counter) % len(bodies)]
                t0 = time.perf_counter()
                try:
                    writer.write(request_bytes(body))
                    status, _ = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # hypercorn closes a connection after keep_alive_max_requests (1000): reopen
                    writer.close()
                    reconnects += 1
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    return {"clients": clients, "requests": len(latencies), "ok": ok, "reconnects": reconnects, "statuses": {str(k): v for k, v in statuses.items()},
            "payloads_per_s": round(ok / wall, 1), "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 2)}


def fsync_per_payload(folder: Path, bodies: list[bytes], seconds: float) -> float:
    """Payloads/s of one write + fsync each (the old receiver's storage loop, without its HTTP)."""
    journal = Journal(folder / "baseline.jsonl")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        journal.write([bodies[n % len(bodies)] + b"\n"])
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="Sustained load per level.")
    ap.add_argument("--levels", default="1,50,500", help="Concurrent clients, comma-separated.")
    ap.add_argument("--dir", help="Where the store goes (default: the system temp dir; the disk matters).")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    bodies = [json.dumps(payload(n)).encode() for n in range(5000)]
    tmp = Path(tempfile.mkdtemp(prefix="sre-llm-bench-receiver-", dir=args.dir))
    receiver = bare = None
    try:
        receiver = ReceiverProcess(tmp / "store")
        bare = subprocess.Popen([sys.executable, "-c", BARE], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        bare_port = int(bare.stdout.readline())
        asyncio.run(sustain(receiver.port, 10, 0.5, bodies))  # warm both (imports, first fsync)
        asyncio.run(sustain(bare_port, 10, 0.5, bodies))
        results = []
        for clients in levels:  # alternate, so drift in machine load hits both sides alike
            ours = asyncio.run(sustain(receiver.port, clients, args.seconds, bodies))
            base = asyncio.run(sustain(bare_port, clients, args.seconds, bodies))
            ours["bare_server_payloads_per_s"] = base["payloads_per_s"]
            ours["bare_server_p99_ms"] = base["p99_ms"]
            ours["ratio_vs_bare_server"] = round(ours["payloads_per_s"] / base["payloads_per_s"], 3)
            results.append(ours)
        stored = len(stored_seqs(receiver.store))
        acked = sum(r["ok"] for r in results)
        rss_kb = int(next(l.split()[1] for l in Path(f"/proc/{receiver.pid}/status").read_text().splitlines()
                          if l.startswith("VmRSS:")))
        baseline = fsync_per_payload(tmp, bodies, min(args.seconds, 2.0))
        at50 = next((r for r in results if r["clients"] == 50), results[-1])
        print(json.dumps({
            "benchmark": "receiver_load",
            "cpus": os.cpu_count(),
            "seconds_per_level": args.seconds,
            "levels": results,
            "fsync_per_payload_per_s": round(baseline, 1),
            "ratio_vs_fsync_per_payload_at_50": round(at50["payloads_per_s"] / baseline, 2),
            "stored_lines_at_least_acked": stored >= acked,
            "receiver_rss_mb": round(rss_kb / 1024, 1),
            "target_payloads_per_s_at_50": TARGET,
            "payloads_per_s_at_50": at50["payloads_per_s"],
            "pass": at50["payloads_per_s"] >= TARGET,
        }, indent=2))
    finally:
        if receiver is not None:
            receiver.stop()
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
