"""`sre-llm train` vs `llamafactory-cli train` on the same rendered config, alternating runs.

Both train the tiny qwen2 model with LoRA for the same number of steps in a scratch project; the
raw run gets the config `sre-llm train` writes (same paths, only its own output_dir). Wall time
is measured from process start to exit, so sre-llm's start-up, checks, digests and run record
all count. Target (issue 3): ratio ≤ 1.03. Prints one JSON object.

    python bench/train_overhead.py [--runs 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.train_env import project, spec_text  # noqa: E402  (the same project the tests use)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    sre, lf = str(bindir / "sre-llm"), str(bindir / "llamafactory-cli")
    from sre_llm.execute.process import child_env

    env = child_env()  # the raw runs get the same offline environment sre-llm gives its child
    with tempfile.TemporaryDirectory(prefix="sre-llm-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sre, "base-model", "tiny", "--out", "model", "--pretrain-steps", "0"], check=True, cwd=work,
                       env=env, stdout=subprocess.DEVNULL)
        project(work, spec_text("bench", work / "model", "qwen2", lr=1e-2, max_steps=args.steps, save_steps=args.steps))
        # One sre-llm run (not timed) renders the spec and leaves the run config to reuse.
        subprocess.run([sre, "train", "specs/x.yaml"], check=True, cwd=work, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        (first,) = (work / "runs" / "bench" / "0.1.0").iterdir()
        raw_cfg = (first / "train.yaml").read_text()
        sre_t, raw_t, outside = [], [], []
        load = os.getloadavg()[0]
        for i in range(args.runs):
            sre_t.append(timed([sre, "train", "specs/x.yaml"], work, env))
            last = sorted((work / "runs" / "bench" / "0.1.0").iterdir())[-1]
            # What sre-llm adds outside the run record's span (start-up, checks, rendering check).
            outside.append(sre_t[-1] - json.loads((last / "run.json").read_text())["duration_s"])
            out = work / "raw" / str(i)
            cfg = work / f"raw-{i}.yaml"
            cfg.write_text(raw_cfg.replace(str(first / "output"), str(out)))
            raw_t.append(timed([lf, "train", str(cfg)], work, env))
            shutil.rmtree(out, ignore_errors=True)
        ratios = sorted(s / r for s, r in zip(sre_t, raw_t))
    print(json.dumps({
        "benchmark": "train_overhead", "runs_each": args.runs, "steps": args.steps, "cpus": os.cpu_count(),
        "sre_llm_s": [round(x, 2) for x in sre_t], "llamafactory_cli_s": [round(x, 2) for x in raw_t],
        "ratio": {"min": round(ratios[0], 4), "median": round(statistics.median(ratios), 4), "max": round(ratios[-1], 4)},
        "ratio_of_medians": round(statistics.median(sre_t) / statistics.median(raw_t), 4),
        "target": 1.03,
        "sre_llm_outside_run_s": [round(x, 2) for x in outside],
        "load_average_at_start": round(load, 2),
    }, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
