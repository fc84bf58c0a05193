"""Cold `sre-llm render` of every shipped spec vs a cold import of its four core libraries.

Target (issue 2): ratio of medians ≤ 1.5. Prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    specs = [str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("specs/*.yaml"))]
    sre = str(Path(sys.executable).parent / "sre-llm")
    with tempfile.TemporaryDirectory() as out:
        render = [sre, "render", "--out", out, *specs]
        baseline = [sys.executable, "-c", "import pydantic, jinja2, ruamel.yaml, click"]
        timed(render), timed(baseline)  # warm the page cache; every measured run is a new process
        r, b = [], []
        for _ in range(RUNS):  # alternate so drift in machine load hits both alike
            r.append(timed(render))
            b.append(timed(baseline))
    ratio = statistics.median(r) / statistics.median(b)
    print(json.dumps({
        "benchmark": "render_startup",
        "specs": len(specs),
        "runs": RUNS,
        "render_s": {"min": round(min(r), 4), "median": round(statistics.median(r), 4), "max": round(max(r), 4)},
        "import_baseline_s": {"min": round(min(b), 4), "median": round(statistics.median(b), 4), "max": round(max(b), 4)},
        "ratio_median": round(ratio, 3),
        "target_ratio": 1.5,
        "pass": ratio <= 1.5,
    }, indent=2))


if __name__ == "__main__":
    main()
