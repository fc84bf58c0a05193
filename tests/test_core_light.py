"""The validate/render path stays light: no torch, transformers or LLaMA Factory in sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "llamafactory", "peft", "datasets", "accelerate", "bitsandbytes", "vllm")

PROBE = """
import json, sys
from sre_llm.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})}}))
"""


def _probe(argv: list[str], cwd: Path) -> dict:
    code = PROBE.format(argv=argv, heavy=HEAVY)
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
