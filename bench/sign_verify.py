"""Sign + verify of a 1 GB model directory vs one ``sha256sum`` pass over the same files.

Target (issue 6): ratio of medians ≤ 1.5. The model is a few shard files of random bytes in a
temporary directory (removed afterwards), already in the page cache for every contender, as a
freshly trained model is. Signing and verifying use sre-llm's explicit hashing configuration
(sha256 over 64 MiB shards hashed in parallel) through model-signing's Python API, as
``sre-llm sign`` / ``verify`` do. Prints one JSON object.

    python bench/sign_verify.py [--size-mb 1024] [--shards 4] [--runs 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sre_llm import signing


def make_model(folder: Path, size_mb: int, shards: int) -> list[Path]:
    per = size_mb * (1 << 20) // shards
    files = []
    for i in range(1, shards + 1):
        path = folder / f"model-{i:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as fh:
            left = per
            while left:
                n = min(left, 64 << 20)
                fh.write(os.urandom(n))
                left -= n
        files.append(path)
    (folder / "config.json").write_text('{"model_type": "qwen2", "hidden_size": 4096}')
    (folder / "tokenizer_config.json").write_text('{"model_max_length": 4096}')
    return files


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="Where to make the temporary model (default: the system temp dir).")
    args = ap.parse_args()
    if not shutil.which("sha256sum"):
        sys.exit("sha256sum not found")

    tmp = Path(tempfile.mkdtemp(prefix="sre-llm-bench-sign-", dir=args.dir))
    try:
        model = tmp / "model"
        model.mkdir()
        make_model(model, args.size_mb, args.shards)
        files = sorted(str(p) for p in model.iterdir())
        signing.generate_key(tmp / "key.pem", tmp / "key.pub.pem")
        hashing = signing.Hashing()
        bundle = tmp / "model.sig"

        def sha256sum() -> None:
            subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

        def sign() -> None:
            signing.sign(model, bundle, "key", private_key=tmp / "key.pem", hashing=hashing)

        def verify() -> None:
            signing.verify(model, bundle, "key", public_key=tmp / "key.pub.pem", hashing=hashing)

        sha256sum()  # warm the page cache and the imports for everyone
        sign()
        verify()
        base, signs, verifies = [], [], []
        for _ in range(args.runs):  # alternate, so drift in machine load hits both sides alike
            base.append(timed(sha256sum))
            signs.append(timed(sign))
            verifies.append(timed(verify))
        both = [s + v for s, v in zip(signs, verifies)]
        ratio = statistics.median(both) / statistics.median(base)
        size = sum(p.stat().st_size for p in model.iterdir())
        print(json.dumps({
            "benchmark": "sign_verify",
            "bytes": size,
            "files": len(files),
            "runs": args.runs,
            "cpus": os.cpu_count(),
            "hashing": {"method": hashing.method, "algorithm": hashing.algorithm, "shard_size": hashing.shard_size},
            "sha256sum_s": {"median": round(statistics.median(base), 3), "min": round(min(base), 3), "max": round(max(base), 3)},
            "sign_s": {"median": round(statistics.median(signs), 3), "min": round(min(signs), 3)},
            "verify_s": {"median": round(statistics.median(verifies), 3), "min": round(min(verifies), 3)},
            "sign_plus_verify_s": {"median": round(statistics.median(both), 3), "min": round(min(both), 3),
                                   "max": round(max(both), 3)},
            "ratio": round(ratio, 3),
            "target": 1.5,
            "pass": ratio <= 1.5,
        }, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
