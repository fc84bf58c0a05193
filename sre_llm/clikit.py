"""What the command modules share: one JSON shape, one ``--json`` and one ``--root`` option.

Every command takes ``--json``. On success it prints one object with ``"ok": true``; on failure
:func:`sre_llm.cli.main` prints the one error shape (:meth:`sre_llm.errors.SreLlmError.to_json`)
on stdout and the human message on stderr, whatever the command. Only click is imported: the
CLI's start-up stays light.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click


def emit(data: object) -> None:
    """Print ``data`` as indented, key-sorted JSON (anything unusual as its ``str``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def ok(data: dict[str, Any] | None = None, **fields: Any) -> None:
    """Print a success report: ``{"ok": true, ...}``."""
    emit({**(data or {}), **fields, "ok": True})


JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout ({\"ok\": true, …} or {\"ok\": false, \"error\": …}).")

ROOT_HELP = ("The project repository: rendered/, datasets/, runs/, registry/, audit/ and rollouts/ are "
             "under it.")
ROOT_OPTION = click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False),
                           help=ROOT_HELP)


def with_options(fn: Callable, *options: Callable) -> Callable:
    """``fn`` with ``options`` and ``--json`` — as if stacked above it in that order (click builds
    a new parameter each time a decorator is applied)."""
    wrapped = fn
    for option in reversed((*options, JSON_OPTION)):
        wrapped = option(wrapped)
    return wrapped


def json_requested(argv: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` before any ``--``)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def deprecated_alias(command: click.Command, new: str, removed_in: str) -> click.Command:
    """A hidden top-level copy of ``command`` that runs it after one deprecation line on stderr."""
    import copy

    alias = copy.copy(command)
    alias.hidden = True
    target = command.callback
    assert target is not None  # noqa: S101 - an invariant for the type checker, not a security check

    def callback(*args: Any, **kwargs: Any) -> Any:
        click.echo(f"sre-llm {command.name} is deprecated: use `sre-llm {new}` "
                   f"(the old name goes in {removed_in})", err=True)
        return target(*args, **kwargs)

    alias.callback = callback
    alias.short_help = f"Deprecated alias of `sre-llm {new}`."
    alias.help = f"{alias.short_help}\n\n{command.help or ''}"
    return alias
