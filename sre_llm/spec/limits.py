"""Limits on what a spec file may be, checked before anything is built from it.

A real spec is a few KB, a dozen levels deep, with a handful of anchors; anything far beyond is a
mistake or an attack: a YAML alias bomb expands to billions of nodes, a 5,000-deep nesting
overflows the parser's recursion, ``/dev/zero`` never ends. Each is refused as bad input (exit 2)
naming the limit, in well under a second and with bounded memory (tests/test_spec_limits.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from sre_llm.errors import BadInput, Diagnostic, SpecInvalid

MAX_SPEC_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_NODES = 100_000


def read_capped(path: Path, shown: str) -> bytes:
    """At most :data:`MAX_SPEC_BYTES` of a regular file; anything else is refused before reading."""
    import os
    import stat

    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(str(path))
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{shown}: not a regular file (a device, pipe or socket): a spec is a YAML file")
    with open(path, "rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise BadInput(f"{shown}: larger than the {MAX_SPEC_BYTES // 1024} KiB limit for a spec file")
    return data


def check_shape(text: str, filename: str) -> None:
    """Depth and alias limits, checked on the event stream before anything is built from it
    (building is recursive, and aliases make it exponential)."""
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    _check_flow_depth(text, filename)
    # Block nesting needs indentation and aliases need a `*`: a spec with neither past the limits
    # (all real ones) skips the second pass over its events, the most expensive part of a load.
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    if indent < MAX_DEPTH and not _ALIAS.search(text):
        return
    depth = aliases = 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _limit(filename, event, f"nested deeper than {MAX_DEPTH} levels (the limit for a spec)")
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _limit(filename, event, f"more than {MAX_ALIASES} YAML aliases (the limit for a spec)")
    except MarkedYAMLError:
        return  # a syntax error: the full parse reports it with its position
    except RecursionError:
        raise SpecInvalid([Diagnostic(filename, 0, 0, "", f"nested deeper than {MAX_DEPTH} levels (the limit for a spec)")]) from None


_ALIAS = re.compile(r"(?:^|[\s\[{,])\*[^\s,\]}]")


def _check_flow_depth(text: str, filename: str) -> None:
    """``[[[[…`` nesting, found in one pass over the text: ruamel's scanner is quadratic in flow
    depth (5,000 levels take seconds before the first event). Quotes and comments are skipped; a
    misjudged character only defers the verdict to the parser."""
    depth, quote, line, col, comment = 0, "", 1, 0, False
    prev = "\n"
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, comment = line + 1, 0, False
        elif comment:
            pass
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (prev in " \t\n[{,:" ):
            quote = ch
        elif ch == "#" and prev in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecInvalid([Diagnostic(filename, line, col, "", f"nested deeper than {MAX_DEPTH} levels (the limit for a spec)")])
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch


def _limit(filename: str, event: Any, message: str) -> SpecInvalid:
    mark = getattr(event, "start_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    return SpecInvalid([Diagnostic(filename, line, col, "", message)])


def count_nodes(tree: Any, filename: str) -> None:
    """Refuse a tree whose aliases expand to more than :data:`MAX_NODES` values (billion laughs)."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a cycle counts once (a self-referencing alias)
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child) for child in children)
        sizes[id(node)] = total
        return total

    if size(tree) > MAX_NODES:
        raise SpecInvalid([Diagnostic(filename, 0, 0, "", f"expands to more than {MAX_NODES:,} values through YAML "
                                                          "aliases (the limit for a spec; an alias bomb?)")])
