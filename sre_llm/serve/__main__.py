"""``python -m sre_llm.serve``: the gateway alone, in front of a vLLM that runs elsewhere (the
serving pod's other container on localhost). Every option also reads an environment variable."""

from __future__ import annotations

import sys

import click

from sre_llm.answer import ANSWER_FORMATS, DEFAULT_ANSWER_FORMAT


@click.command(context_settings={"auto_envvar_prefix": "SRE_LLM_GATEWAY", "show_default": True})
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
@click.option("--host", default="0.0.0.0")
@click.option("--port", default=8080, type=click.IntRange(0, 65535))
@click.option("--max-body-bytes", default=1 << 20, type=click.IntRange(1))
@click.option("--request-timeout", default=120.0, type=click.FloatRange(min=0.1))
@click.option("--max-concurrency", default=32, type=click.IntRange(1))
@click.option("--read-timeout", default=30.0, type=click.FloatRange(min=1), help="Seconds a client may stay silent.")
def main(upstream: str, served_model: str, aliases: tuple[str, ...], model_version: str, answer_format: str,
         max_new_tokens: int, no_constraint: bool, passthrough: str | None, passthrough_model: str | None, host: str,
         port: int, max_body_bytes: int, request_timeout: float, max_concurrency: int, read_timeout: float) -> None:
    """Serve agent-sre's Ollama requests and OpenAI clients, grounded and guarded, from vLLM."""
    from sre_llm.serve import server
    from sre_llm.serve.app import create_app
    from sre_llm.serve.config import GatewayConfig

    cfg = GatewayConfig(upstream=upstream, served_model=served_model, aliases=aliases, model_version=model_version,
                        answer_format=answer_format, max_new_tokens=max_new_tokens, constrain=not no_constraint,
                        passthrough=passthrough, passthrough_model=passthrough_model, max_body_bytes=max_body_bytes,
                        request_timeout_s=request_timeout, max_concurrency=max_concurrency, read_timeout_s=read_timeout)
    try:
        sock = server.bind(host, port)
    except OSError as exc:
        click.echo(f"{host}:{port} cannot be served: {exc.strerror or exc}", err=True)
        sys.exit(2)
    click.echo(f"sre-llm gateway on http://{host}:{sock.getsockname()[1]} (model {served_model} {model_version}, "
               f"vLLM {upstream})", err=True)
    server.run(create_app(cfg), sock, read_timeout)


if __name__ == "__main__":
    main()
