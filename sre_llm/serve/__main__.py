"""``sre-llm gateway`` (also ``python -m sre_llm.serve``): the gateway alone, in front of a vLLM
that runs elsewhere (the serving pod's other container on localhost). Every option also reads an
environment variable (``SRE_LLM_GATEWAY_<OPTION>``)."""

from __future__ import annotations

import json
import sys

import click

from sre_llm.answer import ANSWER_FORMATS, DEFAULT_ANSWER_FORMAT
from sre_llm.clikit import JSON_OPTION
from sre_llm.serve.options import config_fields, safety_options


@click.command("gateway", context_settings={"auto_envvar_prefix": "SRE_LLM_GATEWAY", "show_default": True})
@click.option("--upstream", required=True, envvar="SRE_LLM_VLLM_URL", help="vLLM's base URL, e.g. http://127.0.0.1:8001.")
@click.option("--model", "served_model", required=True, help="The model name vLLM serves (clients ask for it).")
@click.option("--alias", "aliases", multiple=True, help="Another model name clients may use (agent-sre's MODEL_NAME).")
@click.option("--model-version", default="unknown", help="The registry version (a label on every metric).")
@click.option("--answer-format", type=click.Choice(ANSWER_FORMATS), default=DEFAULT_ANSWER_FORMAT,
              help="The answer format the model was trained on (run.json / registry lineage).")
@click.option("--max-new-tokens", default=64, type=click.IntRange(1), help="The evaluator's max_new_tokens.")
@click.option("--no-constraint", is_flag=True, help="Do not send the alert's grounding regex to vLLM (the guard still checks).")
@click.option("--passthrough", envvar="SRE_LLM_PASSTHROUGH_URL",
              help="An Ollama URL for prompts no adapter understands (agent-sre's health reports).")
@click.option("--passthrough-model", help="Model to ask the pass-through Ollama for [default: the client's].")
@click.option("--host", default="0.0.0.0")  # noqa: S104 - the gateway's container entrypoint: the pod network is the boundary and a bearer token guards it
@click.option("--port", default=8080, type=click.IntRange(0, 65535))
@click.option("--max-body-bytes", default=1 << 20, type=click.IntRange(1))
@click.option("--request-timeout", default=120.0, type=click.FloatRange(min=0.1))
@click.option("--max-concurrency", default=32, type=click.IntRange(1))
@click.option("--read-timeout", default=30.0, type=click.FloatRange(min=1), help="Seconds a client may stay silent.")
@safety_options
@JSON_OPTION
def main(upstream: str, served_model: str, aliases: tuple[str, ...], model_version: str, answer_format: str,
         max_new_tokens: int, no_constraint: bool, passthrough: str | None, passthrough_model: str | None, host: str,
         port: int, max_body_bytes: int, request_timeout: float, max_concurrency: int, read_timeout: float,
         as_json: bool = False, **safety) -> None:
    """Serve agent-sre's Ollama requests and OpenAI clients, grounded and guarded, from a vLLM
    that already runs (in the cluster: the serving pod's vLLM container, on localhost).

    \b
    The serving container's command:
      sre-llm gateway --upstream http://127.0.0.1:8000 --model NAME --model-version 1.0.0
    On one machine, `sre-llm serve VERSION --spec SPEC` starts vLLM and this gateway together.
    """
    from sre_llm.serve import server
    from sre_llm.serve.app import create_app
    from sre_llm.serve.config import GatewayConfig

    cfg = GatewayConfig(upstream=upstream, served_model=served_model, aliases=aliases, model_version=model_version,
                        answer_format=answer_format, max_new_tokens=max_new_tokens, constrain=not no_constraint,
                        passthrough=passthrough, passthrough_model=passthrough_model, max_body_bytes=max_body_bytes,
                        request_timeout_s=request_timeout, max_concurrency=max_concurrency, read_timeout_s=read_timeout,
                        **config_fields(safety))
    from sre_llm.errors import BadInput

    try:
        sock = server.bind(host, port)
    except OSError as exc:
        raise BadInput(f"{host}:{port} cannot be served: {exc.strerror or exc}") from None
    url = f"http://{host}:{sock.getsockname()[1]}"
    if as_json:  # one object when serving starts, like `sre-llm collect serve --json`
        click.echo(json.dumps({"ok": True, "url": url, "model": served_model, "model_version": model_version,
                               "upstream": upstream}), nl=True)
    click.echo(f"sre-llm gateway on {url} (model {served_model} {model_version}, vLLM {upstream})", err=True)
    server.run(create_app(cfg), sock, read_timeout)


if __name__ == "__main__":  # the same command, with the CLI's error handling (exit codes, --json errors)
    from sre_llm.cli import main as cli_main

    cli_main(["gateway", *sys.argv[1:]])
