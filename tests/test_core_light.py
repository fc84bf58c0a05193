"""The validate/render path stays light: no torch, transformers or LLaMA Factory in sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "llamafactory", "peft", "datasets", "accelerate", "bitsandbytes", "vllm")
# The other stages' code is not needed to validate or render either (the CLI loads it lazily).
# Rendering does include the deployment manifests (sre_llm.deploy's pure renderer), not the rollout.
OTHER_STAGES = ("sre_llm.dataset", "sre_llm.collect", "sre_llm.registry", "sre_llm.execute",
                "sre_llm.evaluate", "sre_llm.basemodel", "sre_llm.deploy.rollout", "sre_llm.deploy.analysis",
                "sre_llm.deploy.serve", "sre_llm.deploy.prometheus", "sre_llm.deploy.cli")

PROBE = """
import json, sys
from sre_llm.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in sys.modules
                   if m.split(".")[0] in {heavy!r} or any(m == o or m.startswith(o + ".") for o in {other!r}))}}))
"""


def _probe(argv: list[str], cwd: Path) -> dict:
    code = PROBE.format(argv=argv, heavy=HEAVY, other=OTHER_STAGES)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_render_and_validate_load_no_heavy_module(tmp_path: Path) -> None:
    specs = [str(p) for p in sorted(ROOT.glob("specs/*.yaml"))]
    for argv in (["validate", *specs], ["render", "--out", str(tmp_path / "r"), *specs], ["schema"]):
        result = _probe(argv, ROOT)
        assert result == {"code": 0, "heavy": []}, argv


def test_the_probe_can_see_heavy_modules(tmp_path: Path) -> None:
    """Guard against a probe that cannot fail: importing torch does show up."""
    code = "import sys, torch; print(json.dumps({'heavy': 'torch' in sys.modules}))"
    proc = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout) == {"heavy": True}


def test_every_lazy_command_resolves() -> None:
    import click

    from sre_llm.cli import LAZY, cli

    ctx = click.Context(cli)
    missing = [name for name in LAZY if cli.get_command(ctx, name) is None]
    assert missing == []
