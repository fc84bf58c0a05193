"""Benchmark: batched evaluation vs one example at a time, same model, same data, same answers.

One-at-a-time is LLaMA Factory's own ``ChatModel.chat`` per example (what a naive harness does);
batched is the harness's path: the same loaded model, prompts from the same template, sorted by
length, the shared instruction prefix computed once, left-padded, one greedy ``generate`` per
batch (also measured without the prefix cache). Prints one JSON object with throughput,
P50/P95 latency of each mode, the speed-up and how many answers agree.

    python bench/eval_batching.py [--model DIR] [--data test.jsonl] [--n 128] [--batch-size 32] [--threads 1,2]

Without ``--model`` it builds the untrained tiny model in a temp folder (every answer then runs
to ``--max-new-tokens``); without ``--data`` it builds a synthetic test split. Target (issue 5):
batched ≥ 4× the throughput of one at a time on the 2-core reference machine, each mode at
the thread count that is best for it (both are measured at every count in ``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")

TARGET_SPEEDUP = 4.0


def _rows(data: str | None, n: int, tmp: Path) -> list[dict]:
    if data is None:
        from sre_llm.dataset.build import build
        from sre_llm.spec.load import load_spec

        spec = (ROOT / "specs/tiny-cpu.yaml").read_text().replace("min_examples: 500", "min_examples: 50")
        (tmp / "spec.yaml").write_text(spec)
        data = str(build(load_spec(tmp / "spec.yaml").release, root=tmp).path / "test.jsonl")
    rows = [json.loads(line) for line in Path(data).read_text().splitlines() if line.strip()]
    return rows[:n]


def _stats(latencies_ms: list[float], seconds: float, n: int) -> dict:
    from sre_llm.evaluate.scoring import percentile

    return {"seconds": round(seconds, 3), "throughput_per_s": round(n / seconds, 2),
            "p50_ms": round(percentile(latencies_ms, 0.5), 1), "p95_ms": round(percentile(latencies_ms, 0.95), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="full model folder (default: build the untrained tiny model)")
    ap.add_argument("--template", default="qwen")
    ap.add_argument("--data", help="alpaca test.jsonl (default: a synthetic test split)")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}",
                    help="torch thread counts to try; each mode is compared at its best (default: 1 and all cores)")
    ap.add_argument("--cutoff-len", type=int, default=1024, help="prompts longer than this are cut (as in eval)")
    args = ap.parse_args()

    from sre_llm.evaluate.engine import Generator, ModelRef

    threads = sorted({int(t) for t in args.threads.split(",")})
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        model = args.model
        if model is None:
            from sre_llm.basemodel.tiny import TinyConfig, build_tiny

            model = str(tmp / "tiny")
            build_tiny(model, TinyConfig(pretrain_steps=0, threads=threads[0]))
        rows = _rows(args.data, args.n, tmp)
        gen = Generator(ModelRef(model, None, args.template, "full"), args.max_new_tokens, args.cutoff_len, threads=threads[0])
        per_threads = {}
        for t in threads:
            per_threads[t] = _measure(gen, rows, args.batch_size, t)

    # Each mode at the thread count that suits it on this machine: one small answer at a time is
    # fastest on one thread (OpenMP costs more than it gives), a batch on all cores.
    best_one = max(per_threads, key=lambda t: per_threads[t]["one_at_a_time"]["throughput_per_s"])
    best_many = max(per_threads, key=lambda t: per_threads[t]["batched"]["throughput_per_s"])
    one = per_threads[best_one]["one_at_a_time"]
    many = per_threads[best_many]["batched"]
    speedup = round(many["throughput_per_s"] / one["throughput_per_s"], 2)
    print(json.dumps({
        "benchmark": "eval_batching", "model": "untrained tiny (built)" if args.model is None else args.model,
        "examples": len(rows), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "one_at_a_time": {**one, "threads": best_one}, "batched": {**many, "threads": best_many},
        "speedup": speedup, "target_speedup": TARGET_SPEEDUP, "meets_target": speedup >= TARGET_SPEEDUP,
        "by_threads": per_threads,
    }, indent=2))


def _measure(gen, rows: list[dict], batch_size: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    gen.generate([gen.encode(rows[0]["instruction"], rows[0]["input"])[0]])  # warm-up: first-call allocations
    single, lat1 = [], []
    t0 = time.perf_counter()
    for r in rows:
        t = time.perf_counter()
        single.append(gen.chat(r["instruction"], r["input"]))
        lat1.append((time.perf_counter() - t) * 1000)
    s1 = time.perf_counter() - t0

    t0 = time.perf_counter()
    plain = gen.run(rows, batch_size, prefix_cache=False)
    sp = time.perf_counter() - t0

    t0 = time.perf_counter()
    batched = gen.run(rows, batch_size)
    sb = time.perf_counter() - t0
    one = _stats(lat1, s1, len(rows))
    # A caller in a batch waits for the whole batch: that is its latency.
    many = _stats([b["batch_ms"] for b in batched], sb, len(rows))
    no_prefix = _stats([b["batch_ms"] for b in plain], sp, len(rows))
    return {
        "one_at_a_time": one, "batched": many, "batched_without_prefix_cache": no_prefix,
        "speedup_same_threads": round(many["throughput_per_s"] / one["throughput_per_s"], 2),
        "answers_agree": sum(a == b["output"] for a, b in zip(single, batched)),
        "answers_agree_without_prefix_cache": sum(a == b["output"] for a, b in zip(single, plain)),
    }


if __name__ == "__main__":
    main()
