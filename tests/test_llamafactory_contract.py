"""Contract with LLaMA Factory 0.9.5: every rendered train config passes its own parser and checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sre_llm import api
from sre_llm.spec import registry

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("tests/fixtures/specs/*.yaml"))

pytestmark = pytest.mark.llamafactory


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=600)


def test_every_rendered_train_config_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    configs = []
    for spec in SPECS:
        for f in api.render_files([str(spec)]):
            if f.path.endswith("train.yaml"):
                out = tmp_path / f.path
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(f.text)
                configs.append(str(out))
    assert len(configs) == len(SPECS)
    proc = _run(str(ROOT / "tests" / "helpers" / "lf_contract.py"), *configs)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(configs), proc.stderr[-3000:]
    failed = {r["config"]: r["error"] for r in results if not r["ok"]}
    assert failed == {}


def test_an_unknown_key_is_refused_by_the_contract(tmp_path: Path) -> None:
    """The contract test can fail: LLaMA Factory refuses a key it does not know."""
    good = next(f for f in api.render_files([str(ROOT / "specs" / "tiny-cpu.yaml")]) if f.path.endswith("train.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.text + "lora_rnk: 8\n")
    proc = _run(str(ROOT / "tests" / "helpers" / "lf_contract.py"), str(bad))
    (result,) = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert not result["ok"] and "lora_rnk" in result["error"]
    assert proc.returncode == 1


def test_registries_agree_with_the_installed_stack() -> None:
    """The spec's choices come from registries; they must match what the trainer accepts."""
    from llamafactory.data.template import TEMPLATES
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    assert set(registry.OPTIMIZERS) == {o.value for o in OptimizerNames}
    assert set(registry.SCHEDULERS) == {s.value for s in SchedulerType}
    missing = {f: fam.template for f, fam in registry.FAMILIES.items() if fam.template not in TEMPLATES}
    assert missing == {}
