"""Byte-stable YAML for Kubernetes manifests: keys in the order given (apiVersion, kind, metadata,
spec — the order people read), block style, no line wrapping, strings quoted when YAML would read
them as something else ("0.0", "8000", "on")."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def dump(doc: Any, header: str = "") -> str:
    """One YAML document; ``header`` lines (comments) go first."""
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return header + buf.getvalue()


def dump_all(docs: Iterable[Any], header: str = "") -> str:
    """Several documents separated by ``---``."""
    return header + "---\n".join(dump(d) for d in docs)


def load(text: str) -> Any:
    """Read one document back (the rollout reads its own files)."""
    return _yaml().load(text)


def load_all(text: str) -> list[Any]:
    """Every non-empty document of a multi-document file (a rendered tree read back from git)."""
    return [d for d in _yaml().load_all(text) if d]
