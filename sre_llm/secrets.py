"""Secret references (``env:NAME`` / ``file:PATH``) resolved in one place.

Specs hold references, never values. Values are returned to the caller and never logged,
formatted into errors or written anywhere by this module: error messages name the reference only.
"""

from __future__ import annotations

import os
from pathlib import Path

from sre_llm.errors import BadInput


def resolve(ref: str, root: str | Path = ".") -> str:
    """The secret ``ref`` names, trailing newlines stripped.

    ``env:NAME`` reads the environment variable NAME (unset or empty is an error);
    ``file:PATH`` reads the file, relative paths from ``root``.
    """
    kind, sep, name = ref.partition(":")
    if not sep or not name:
        raise BadInput(f"{ref!r}: a secret reference is env:NAME or file:PATH")
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise BadInput(f"{ref}: environment variable {name} is not set")
        return value.rstrip("\r\n")
    if kind == "file":
        path = Path(name) if Path(name).is_absolute() else Path(root) / name
        try:
            value = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BadInput(f"{ref}: no such file (relative paths are from {root})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{ref}: cannot read ({type(exc).__name__})") from None
        value = value.rstrip("\r\n")
        if not value:
            raise BadInput(f"{ref}: file is empty")
        return value
    raise BadInput(f"{ref!r}: a secret reference is env:NAME or file:PATH")


def redacted(ref: str | None) -> str:
    """How a reference appears in logs and cards: the reference, never the value."""
    return ref or "(none)"
