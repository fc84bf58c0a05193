"""Security CI: flake8-bandit's rules (ruff ``S``) are clean on sre_llm/, and detect-secrets finds
no secret in tracked files beyond the audited ``.secrets.baseline`` — each shown able to fail."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUFF = shutil.which("ruff", path=str(BIN)) or shutil.which("ruff")
HOOK = shutil.which("detect-secrets-hook", path=str(BIN)) or shutil.which("detect-secrets-hook")
# A fake AWS key pair in AWS's own documentation format; split so this file holds no key itself.
FAKE_AWS = "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE" + "\naws_secret_access_key = " + \
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY" + "\n"


def _run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install 'sre-llm[test]')")
def test_bandit_rules_clean_on_the_package(tmp_path):
    out = _run([RUFF, "check", "--select", "S", "--output-format", "concise", "sre_llm"])
    assert out.returncode == 0, f"ruff S rules (fix, or `# noqa: S… - reason`):\n{out.stdout}{out.stderr}"
    # The same command does fail on what bandit is for.
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess\n\n\ndef f(x):\n    subprocess.call('ls ' + x, shell=True)\n")
    out = _run([RUFF, "check", "--isolated", "--select", "S", "--output-format", "concise", str(bad)])
    assert out.returncode == 1 and "S602" in out.stdout, out.stdout


def _hook(baseline: Path, files: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # The baseline is a copy: the hook rewrites line numbers that moved (exit 3, nothing new).
    return _run([HOOK, "--baseline", str(baseline), *files], cwd)


@pytest.mark.skipif(HOOK is None, reason="detect-secrets is not installed (pip install 'sre-llm[test]')")
def test_detect_secrets_catches_a_planted_key(tmp_path):
    work = tmp_path / "tree"  # a copy of the repository's baseline, applied to a planted file
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    copy = tmp_path / "copy.baseline"
    shutil.copy(ROOT / ".secrets.baseline", copy)
    (work / "deploy.env").write_text("REGION=eu-west-1\n")
    assert _hook(copy, ["deploy.env"], work).returncode == 0
    (work / "deploy.env").write_text("REGION=eu-west-1\n" + FAKE_AWS)
    out = _hook(copy, ["deploy.env"], work)
    assert out.returncode == 1, out.stdout
    assert "AWS Access Key" in out.stdout and "deploy.env:2" in out.stdout


@pytest.mark.slow  # detect-secrets reads every tracked file: ~10 CPU seconds
@pytest.mark.skipif(HOOK is None, reason="detect-secrets is not installed (pip install 'sre-llm[test]')")
def test_no_new_secret_in_tracked_files(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # the baseline itself holds hashes of what it lists (pre-commit setups exclude it the same way)
    files = [f for f in _run(["git", "ls-files", "-z"]).stdout.split("\0")
             if f and f != ".secrets.baseline" and (ROOT / f).is_file()]
    copy = tmp_path / "secrets.baseline"
    shutil.copy(ROOT / ".secrets.baseline", copy)
    out = _hook(copy, files)
    assert out.returncode in (0, 3), (
        "detect-secrets found something the baseline does not list. Remove it, or if it is not a secret, "
        "audit it into the baseline: `detect-secrets scan --baseline .secrets.baseline` then "
        f"`detect-secrets audit .secrets.baseline`.\n{out.stdout}")
    assert json.loads((ROOT / ".secrets.baseline").read_text())["version"]
