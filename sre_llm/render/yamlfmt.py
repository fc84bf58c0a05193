"""Scalars written so YAML 1.1 (PyYAML, which LLaMA Factory uses) and 1.2 read them back alike."""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./,@+-]*$")
_SPECIAL = re.compile(r"^(y|n|yes|no|on|off|true|false|null|~)$", re.IGNORECASE)


def scalar(value: object) -> str:
    """One YAML scalar. Floats keep a dot in the mantissa (PyYAML reads ``5e-05`` as a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            text = f"{mantissa}e{exponent}"
        return text
    if isinstance(value, str):
        return value if _PLAIN.match(value) and not _SPECIAL.match(value) else json.dumps(value, ensure_ascii=False)
    raise TypeError(f"not a YAML scalar: {type(value).__name__}")
