"""Packaging: every sub-package is listed, templates ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sre_llm").rglob("__init__.py")}
    assert found - listed == set()


@pytest.mark.slow
def test_wheel_ships_templates(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("sre_llm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for tpl in (ROOT / "templates").rglob("*.j2"):
        assert f"sre_llm/templates/{tpl.relative_to(ROOT / 'templates').as_posix()}" in names
