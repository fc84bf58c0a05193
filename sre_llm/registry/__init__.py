"""Model registry: a git-native index per model, a content-addressed artifact store, signing,
promotion and rollback. See docs/registry.md.

The command line lives in :mod:`sre_llm.registry.cli`; everything it does is callable from here.
Names are imported on first use so that loading the CLI (``sre-llm validate``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ArtifactStore": "store", "LocalStore": "store",
    "Registry": "service", "open_registry": "service", "register": "service", "list_versions": "service",
    "show": "service", "diff": "service",
    "sign": "release", "verify": "release", "promote": "release", "rollback": "release",
    "on_alias_change": "release", "previous_champion": "release",
    "push": "transfer", "pull": "transfer",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sre_llm.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sre_llm.registry.{_EXPORTS[name]}"), name)
