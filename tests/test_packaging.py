"""Packaging: every sub-package is listed, extras are ranges pinned in constraints.txt, the wheel
ships the templates, py.typed and the metadata of an open-source project (licence, URLs, classifiers)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sre_llm").rglob("__init__.py")}
    assert found - listed == set()


def test_extras_are_ranges_and_constraints_pin_them() -> None:
    """pyproject.toml says what should work (ranges, so sre-llm installs beside other packages);
    constraints.txt says what was tested (exact pins, what `make setup` installs)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    for extra, reqs in {"(core)": project["dependencies"], **project["optional-dependencies"]}.items():
        for text in reqs:
            req = Requirement(text)
            if canonicalize_name(req.name) == "sre-llm":
                assert set(req.extras) <= set(project["optional-dependencies"]), text
                continue
            assert not [s for s in req.specifier if s.operator in ("==", "===")], f"{extra}: {text} pins; pin in constraints.txt"
            name = canonicalize_name(req.name)
            assert name in pins, f"{extra}: {req.name} is not pinned in constraints.txt"
            assert req.specifier.contains(pins[name], prereleases=True), f"{extra}: {text} excludes the tested {pins[name]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (built,) = out.glob("sre_llm-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_templates_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for tpl in (ROOT / "templates").rglob("*.j2"):
        assert f"sre_llm/templates/{tpl.relative_to(ROOT / 'templates').as_posix()}" in names
    assert "sre_llm/py.typed" in names
    # the synthetic corpus's vocabularies (`dataset synth --vocabulary main|alt`)
    assert {"sre_llm/dataset/vocabularies/main.json", "sre_llm/dataset/vocabularies/alt.json"} <= names


@pytest.mark.slow
def test_wheel_metadata_has_licence_urls_and_classifiers(wheel: Path) -> None:
    import email.parser

    with zipfile.ZipFile(wheel) as zf:
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
        names = zf.namelist()
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Repository", "Issues", "Changelog"}
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3 :: Only" in classifiers
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("llamafactory") and 'extra == "train"' in r for r in requires)
    assert any(r.startswith("sre-llm[train]") and 'extra == "eval"' in r for r in requires)
