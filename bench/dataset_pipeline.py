"""Benchmark: 100,000 alerts from files through label → redact → dedupe → split → write.

Against a baseline measured in the same run: a bare json-in / json-out loop over the same
records (read each line, ``json.loads``, ``json.dumps``, write). Each side runs in its own child
process so that peak RSS is its own. Prints one JSON object.

    python bench/dataset_pipeline.py [--count 100000] [--seed 1] [--repeat 3]

With ``--repeat N`` the two sides alternate N times on the same input and the figures are the
minimum and median of each, plus the ratio pipeline / baseline per round (the machine is shared:
the ratio within a round is the figure that means something; the load average is recorded).

Targets (issue 4): pipeline ≤ 4 s and peak RSS ≤ 400 MB on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 4.0
TARGET_RSS_MB = 400


def _release(count: int):
    from sre_llm.spec.model import ModelRelease

    return ModelRelease.model_validate({
        "apiVersion": "sre-llm/v1", "kind": "ModelRelease",
        "metadata": {"name": "bench", "version": "0.0.1"},
        "spec": {
            "base_model": {"path": "unused", "family": "qwen2"},
            "dataset": {"name": "bench", "sources": [{"type": "runbook", "path": "unused.jsonl"}],
                        "min_examples": 1, "max_examples": count * 2},
        },
    })


def child_baseline(src: str, out: str) -> dict:
    t, c = time.perf_counter(), time.process_time()
    n = 0
    with open(src, encoding="utf-8") as fin, open(out, "w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(json.dumps(json.loads(line), ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return {"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c, "records": n}


def child_pipeline(src: str, out: str, count: int) -> dict:
    release = _release(count)  # spec parsing is not part of the measured pipeline
    from sre_llm.dataset.build import build

    t, c = time.perf_counter(), time.process_time()
    built = build(release, root=out, inputs=[src], read_sources=False)
    return {"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c, "examples": built.card["stats"]["examples"],
            "splits": built.card["stats"]["splits"], "duplicates": built.card["stats"]["duplicates"],
            "redactions": built.card["stats"]["redactions"]}


def _run_child(args: list[str]) -> tuple[dict, float]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args[:2]} failed with status {status}")
    return json.loads(out), usage.ru_maxrss / 1024  # KiB → MiB on Linux


def _min_median(values: list[float]) -> dict:
    v = sorted(values)
    mid = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return {"min": round(v[0], 3), "median": round(mid, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        res = child_baseline(*rest) if kind == "baseline" else child_pipeline(rest[0], rest[1], int(rest[2]))
        print(json.dumps(res))
        return

    from sre_llm.dataset.synth import generate

    with tempfile.TemporaryDirectory(prefix="sre-llm-bench-") as tmp:
        src = Path(tmp) / "alerts.jsonl"
        t = time.perf_counter()
        with open(src, "w", encoding="utf-8") as fh:
            for r in generate(a.count, a.seed):
                fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
        gen_s = time.perf_counter() - t
        load_before = os.getloadavg()[0]
        rounds = []
        for i in range(max(1, a.repeat)):
            base, base_rss = _run_child(["--child", "baseline", str(src), str(Path(tmp) / "baseline.jsonl")])
            pipe, pipe_rss = _run_child(["--child", "pipeline", str(src), str(Path(tmp) / f"out{i}"), str(a.count)])
            rounds.append((base, base_rss, pipe, pipe_rss))
        load_after = os.getloadavg()[0]
        # The reported round is the one with the median ratio; min and median over all rounds.
        ratios = sorted(p["seconds"] / b["seconds"] for b, _, p, _ in rounds)
        base, base_rss, pipe, pipe_rss = sorted(rounds, key=lambda r: r[2]["seconds"] / r[0]["seconds"])[len(rounds) // 2]
        pipe_rss = max(r[3] for r in rounds)
        result = {
            "repeat": len(rounds),
            "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
            "cpus": os.cpu_count(),
            "baseline_s": _min_median([b["seconds"] for b, _, _, _ in rounds]),
            "pipeline_s_all": _min_median([p["seconds"] for _, _, p, _ in rounds]),
            "ratio": _min_median(ratios),
            "cpu_ratio": _min_median([p["cpu_seconds"] / b["cpu_seconds"] for b, _, p, _ in rounds]),
            "benchmark": "dataset_pipeline",
            "alerts": a.count,
            "input_mb": round(src.stat().st_size / 2**20, 1),
            "generate_s": round(gen_s, 3),
            "baseline_json_loop_s": round(base["seconds"], 3),
            "baseline_peak_rss_mb": round(base_rss, 1),
            "pipeline_s": round(pipe["seconds"], 3),
            "pipeline_peak_rss_mb": round(pipe_rss, 1),
            "pipeline_over_baseline": round(pipe["seconds"] / base["seconds"], 2),
            "examples": pipe["examples"],
            "splits": pipe["splits"],
            "duplicates": pipe["duplicates"],
            "redactions": pipe["redactions"],
            "target_s": TARGET_S,
            "target_rss_mb": TARGET_RSS_MB,
            "ok": pipe["seconds"] <= TARGET_S and pipe_rss <= TARGET_RSS_MB,
        }
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
