"""CycloneDX SBOMs of the Python environments a version was built with, kept with its lineage.

``registry register`` attaches one SBOM per environment role (``train`` by default: the Python
that runs the registration, which in CI is the training environment; ``serve`` for the gateway's
venv when given). Each is written next to the index as ``registry/<model>/<version>.<role>.cdx.json``
(committed with the index and the signature bundle at promote), its digest recorded in the index
entry (the lineage) and in the ``register`` audit record, so the signed audit checkpoint that
``registry sign`` appends covers it.

``cyclonedx-py environment`` takes about 10 s on the training venv when it validates its own
output and 0.7 s when it does not (measured, 194 components), so it runs with ``--no-validate``
(the JSON is parsed and checked here) and ``--output-reproducible`` (no serial number or time: the
same environment gives the same bytes). The result is cached per environment, keyed by the
digest of its installed ``name==version`` list, in the user's cache (``$SRE_LLM_CACHE``, else
``$XDG_CACHE_HOME/sre-llm``, else ``~/.cache/sre-llm``): a second registration from the same
environment costs one package listing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess  # noqa: S404 - the one place the SBOM generator runs; argv fixed, no shell
import sys
from collections.abc import Sequence
from pathlib import Path

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.fsutil import user_cache, write_atomic

GENERATOR = "cyclonedx-py environment (cyclonedx-bom)"
DEFAULT_ROLE = "train"
_ROLE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LIST = ("import importlib.metadata as m; "
         "print('\\n'.join(sorted({(d.metadata['Name'] or '').lower() + '==' + d.version for d in m.distributions()})))")


def cache_dir() -> Path:
    """Where generated SBOMs are cached, per environment digest."""
    return user_cache("sbom")


def parse_roles(values: Sequence[str]) -> list[tuple[str, str]]:
    """``ROLE=PYTHON`` options (``--sbom serve=.venv-serve/bin/python``) as (role, python) pairs."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        role, sep, python = value.partition("=")
        if not sep or not _ROLE.match(role) or not python:
            raise BadInput(f"--sbom {value!r}: give ROLE=PYTHON, e.g. serve=.venv-serve/bin/python (role: a-z, 0-9, -)")
        if role in dict(pairs):
            raise BadInput(f"--sbom {role}: given twice")
        pairs.append((role, python))
    return pairs


def _run(argv: list[str], what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603 - fixed argv
    except FileNotFoundError:
        raise BadInput(f"{argv[0]}: no such Python for the {what} SBOM") from None
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{what} SBOM: {argv[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"{what} SBOM: {' '.join(argv[:4])} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def environment_key(python: str) -> str:
    """sha256 of the environment's sorted ``name==version`` list: what the SBOM is a function of."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        import importlib.metadata as m

        listing = "\n".join(sorted({(d.metadata["Name"] or "").lower() + "==" + d.version for d in m.distributions()}))
    else:
        listing = _run([python, "-c", _LIST], "environment", 60).strip()
    return hashlib.sha256(listing.encode()).hexdigest()


def generate(python: str, role: str = DEFAULT_ROLE) -> bytes:
    """The CycloneDX JSON SBOM of the environment of ``python`` (cached per environment)."""
    if not Path(python).exists():
        raise BadInput(f"--sbom {role}={python}: no such Python")
    cached = cache_dir() / f"{environment_key(python)}.cdx.json"
    if cached.is_file():
        return cached.read_bytes()
    try:
        import cyclonedx_py  # noqa: F401 - only to say what to install
    except ImportError:
        raise BadInput("SBOMs need cyclonedx-bom (pip install 'sre-llm[registry]'), or pass --no-sbom") from None
    out = cache_dir() / f".{os.getpid()}.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run([sys.executable, "-m", "cyclonedx_py", "environment", "--no-validate", "--output-reproducible",
              "--of", "JSON", "--sv", "1.6", "-o", str(out), python], role, 600)
        data = out.read_bytes()
    finally:
        out.unlink(missing_ok=True)
    components(data, role)  # refuse to cache what is not an SBOM
    write_atomic(cached, data)
    return data


def components(data: bytes, role: str = DEFAULT_ROLE) -> list[dict]:
    """The components of a CycloneDX JSON document; CheckFailed when it is not one."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise CheckFailed(f"{role} SBOM: the generator wrote no JSON") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX" or not isinstance(doc.get("components"), list):
        raise CheckFailed(f"{role} SBOM: not a CycloneDX document")
    return doc["components"]


def path_for(model: str, version: str, role: str) -> str:
    """Where a version's SBOM is kept, relative to the repository root (next to its bundle)."""
    return f"registry/{model}/{version}.{role}.cdx.json"
