"""Push + pull + verify of a model through a local OCI registry vs raw HTTP + one ``sha256sum`` pass.

Target (issue 14): ``sre-llm registry push`` + ``pull --verify`` of a 1 GiB model through Debian's
``docker-registry`` on 127.0.0.1 takes at most 1.5× a raw HTTP PUT + GET of the same blobs to the
same registry (httpx, no ORAS, no signature) plus one ``sha256sum`` pass over the files pulled.
Each run uses a fresh repository, so every blob is really sent. The model (a few shard files of
random bytes) lives in a temporary directory, removed afterwards, with the registry's storage.
Prints one JSON object.

    python bench/oci_roundtrip.py [--size-mb 1024] [--shards 4] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from sre_llm import signing
from sre_llm.registry import release, transfer
from sre_llm.registry.service import open_registry, register

SPEC = """\
apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: bench-model
  version: 1.0.0
spec:
  base_model:
    path: .cache/models/bench
    family: qwen2
  signing:
    method: key
    private_key: file:keys/signing.pem
    public_key: keys/signing.pub.pem
"""


def make_model(folder: Path, size_mb: int, shards: int) -> None:
    folder.mkdir(parents=True)
    per = size_mb * (1 << 20) // shards
    for i in range(1, shards + 1):
        with open(folder / f"model-{i:05d}-of-{shards:05d}.safetensors", "wb") as fh:
            left = per
            while left:
                n = min(left, 64 << 20)
                fh.write(os.urandom(n))
                left -= n
    (folder / "config.json").write_text('{"model_type": "qwen2", "hidden_size": 4096}')
    (folder / "tokenizer_config.json").write_text('{"model_max_length": 4096}')


def start_registry(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        sys.exit("docker-registry not found (apt-get install docker-registry)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{s.getsockname()[1]}"
    (folder / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'storage'}\nhttp:\n  addr: {host}\n")
    proc = subprocess.Popen([binary, "serve", str(folder / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 200:
                return proc, host
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("docker-registry did not start")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def raw_roundtrip(host: str, repo: str, digests: dict[Path, str], out: Path) -> None:
    """The baseline: POST + monolithic PUT of each file, GET each blob back to a file, sha256sum.
    The digests are taken before the clock starts, as sre-llm's come from the index."""
    base = f"http://{host}/v2/{repo}/"
    out.mkdir()
    with httpx.Client(timeout=httpx.Timeout(60, read=600)) as client:
        for path, digest in digests.items():
            location = client.post(base + "blobs/uploads/").headers["location"]
            location = location if location.startswith("http") else f"http://{host}{location}"
            sep = "&" if "?" in location else "?"

            def body(p=path):
                with open(p, "rb") as fh:
                    while chunk := fh.read(4 << 20):
                        yield chunk

            r = client.put(f"{location}{sep}digest={digest}", content=body(),
                           headers={"Content-Length": str(path.stat().st_size), "Content-Type": "application/octet-stream"})
            r.raise_for_status()
        for path, digest in digests.items():
            with client.stream("GET", base + f"blobs/{digest}") as r, open(out / path.name, "wb") as fh:
                r.raise_for_status()
                fh.writelines(r.iter_bytes(4 << 20))
    subprocess.run(["sha256sum", *sorted(str(p) for p in out.iterdir())], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="Where to make the temporary model and registry (default: the system temp dir).")
    args = ap.parse_args()
    if not shutil.which("sha256sum"):
        sys.exit("sha256sum not found")

    tmp = Path(tempfile.mkdtemp(prefix="sre-llm-bench-oci-", dir=args.dir))
    proc = None
    try:
        proc, host = start_registry(tmp)
        root = tmp / "gitops"
        (root / "specs").mkdir(parents=True)
        (root / "specs" / "bench.yaml").write_text(SPEC)
        signing.generate_key(root / "keys" / "signing.pem", root / "keys" / "signing.pub.pem")
        model = tmp / "model"
        make_model(model, args.size_mb, args.shards)
        reg = open_registry(root)
        register(reg, root / "specs" / "bench.yaml", model)
        release.sign(reg, "bench-model", "1.0.0")
        digests = {p: file_digest(p) for p in sorted(model.iterdir())}

        raw, push, pull, ours = [], [], [], []
        for i in range(args.runs):
            start = time.perf_counter()
            raw_roundtrip(host, f"bench/raw{i}", digests, tmp / f"raw{i}")
            raw.append(time.perf_counter() - start)
            shutil.rmtree(tmp / f"raw{i}")

            start = time.perf_counter()
            res = transfer.push(reg, "bench-model", "1.0.0", f"oci://{host}/bench/sre{i}")
            mid = time.perf_counter()
            transfer.pull(reg, res["reference"], tmp / f"pulled{i}", verify=True)
            end = time.perf_counter()
            push.append(mid - start)
            pull.append(end - mid)
            ours.append(end - start)
            shutil.rmtree(tmp / f"pulled{i}")

        ratio = statistics.median(ours) / statistics.median(raw)
        print(json.dumps({
            "benchmark": "oci_roundtrip",
            "size_mb": args.size_mb, "shards": args.shards, "runs": args.runs,
            "raw_put_get_sha256sum_s": [round(x, 3) for x in raw],
            "push_s": [round(x, 3) for x in push],
            "pull_verify_s": [round(x, 3) for x in pull],
            "push_pull_verify_s": [round(x, 3) for x in ours],
            "median_raw_s": round(statistics.median(raw), 3),
            "median_ours_s": round(statistics.median(ours), 3),
            "ratio": round(ratio, 3),
            "target": 1.5,
            "passed": ratio <= 1.5,
            "cpus": os.cpu_count(),
        }, sort_keys=True))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
