"""The gateway's action-safety and side-call options, shared by ``sre-llm gateway`` (and anything
else that starts one): one decorator and one function that turns the values into config fields."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sre_llm.serve.safety import parse_allow, parse_rate_limit


def _allow(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        return tuple(parse_allow(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _rate(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        for v in values:
            parse_rate_limit(v)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return values


_OPTIONS = [
    click.option("--allow", "allowed_functions", multiple=True, callback=_allow, metavar="NAMESPACE=FN[,FN…]",
                 help="Functions allowed for alerts of NAMESPACE (* = any other); repeat. None given: all."),
    click.option("--rate-limit", "rate_limits", multiple=True, callback=_rate, metavar="FN=MAX/DURATION",
                 help="At most MAX decisions of FN per target (namespace/name) per DURATION, e.g. pod-restart=3/1h."),
    click.option("--kill-switch", type=click.Path(dir_okay=True), default=None,
                 help="A file (or a mounted ConfigMap's folder, key `enabled`): \"true\" makes every answer none."),
    click.option("--kill-switch-poll", "kill_switch_poll_s", default=2.0, type=click.FloatRange(min=0.1),
                 help="Seconds between reads of the kill switch."),
    click.option("--collector", envvar="SRE_LLM_COLLECTOR_URL", default=None,
                 help="`sre-llm collect serve` base URL: each decision is posted to <URL>/decisions."),
    click.option("--collector-token-file", type=click.Path(dir_okay=False), default=None,
                 help="File with the collector's bearer token [default: env SRE_LLM_COLLECTOR_TOKEN]."),
    click.option("--collector-queue", default=1000, type=click.IntRange(1), help="Decisions buffered; more are dropped."),
    click.option("--shadow", default=None,
                 help="The challenger's gateway URL: a copy of each live request is answered there and compared."),
    click.option("--shadow-queue", default=256, type=click.IntRange(1), help="Shadow copies buffered; more are dropped."),
    click.option("--client-token-file", type=click.Path(dir_okay=False), default=None,
                 help="File with the bearer token OpenAI-style clients (/v1/*) must send "
                      "[default: env SRE_LLM_GATEWAY_TOKEN; neither: no token asked]. Ollama's /api/* stays open."),
]


def safety_options(fn: Callable) -> Callable:
    """Adds the options; the command receives them as keyword arguments (pass them to :func:`config_fields`)."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def config_fields(values: dict[str, Any]) -> dict[str, Any]:
    """GatewayConfig fields from the options' values (the token read from its file or the environment)."""
    out = dict(values)
    token_file = out.pop("collector_token_file", None)
    if token_file:
        try:
            out["collector_token"] = Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise click.BadParameter(f"cannot read {token_file} ({type(exc).__name__})",
                                     param_hint="--collector-token-file") from None
    else:
        out["collector_token"] = os.environ.get("SRE_LLM_COLLECTOR_TOKEN") or None
    out["client_token"] = _token(out.pop("client_token_file", None), "SRE_LLM_GATEWAY_TOKEN", "--client-token-file")
    return out


def _token(path: str | None, env: str, hint: str) -> str | None:
    if not path:
        return os.environ.get(env) or None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path} ({type(exc).__name__})", param_hint=hint) from None
