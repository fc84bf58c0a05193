"""What the stage command modules share: JSON output, and failures reported as JSON under --json.

Only click is imported: the CLI's start-up stays light.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from sre_llm.errors import SreLlmError


def emit(data: object) -> None:
    """Print ``data`` as indented, key-sorted JSON (anything unusual as its ``str``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def json_errors(fn: Callable) -> Callable:
    """With ``--json`` (the ``as_json`` parameter), a failure also prints ``{"ok": false, "error": …}``;
    the error is re-raised so :func:`sre_llm.cli.main` still maps it to its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SreLlmError as exc:
            if kwargs.get("as_json"):
                emit({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
            raise

    return wrapper


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of text.")


def with_options(fn: Callable, *options: Callable) -> Callable:
    """``fn`` with :func:`json_errors`, then ``options`` and ``--json`` — as if stacked above it in
    that order (click builds a new parameter each time a decorator is applied)."""
    wrapped = json_errors(fn)
    for option in reversed((*options, JSON_OPTION)):
        wrapped = option(wrapped)
    return wrapped
