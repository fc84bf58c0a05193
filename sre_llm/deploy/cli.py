"""Commands of the deployment stage: ``rollout start|status|analyze|advance|abort`` and ``serve``.

Each parses, calls one library function, prints, and lets :func:`sre_llm.cli.main` map errors to
exit codes. Only click is imported at module level (vLLM never is: it runs in its own venv).
"""

from __future__ import annotations

from collections.abc import Callable

import click

from sre_llm.clikit import ROOT_OPTION, with_options
from sre_llm.clikit import ok as _ok
from sre_llm.errors import CheckFailed


def _common(fn: Callable) -> Callable:
    """SPEC, --root, --metrics-dir and --json."""
    return with_options(
        fn,
        click.argument("spec", type=click.Path(dir_okay=False)),
        ROOT_OPTION,
        click.option("--metrics-dir", type=click.Path(file_okay=False), envvar="SRE_LLM_METRICS_DIR",
                     help="Write rollout gauges (sre_llm_rollout_rolled_back, …) here for a textfile collector."),
    )


PUSH = click.option("--pushgateway", envvar="SRE_LLM_PUSHGATEWAY",
                    help="Push the loop's deployment and A/B success rates (from the rollouts on record in git) "
                         "to this Pushgateway after the change [env SRE_LLM_PUSHGATEWAY].")


def _push(root: str, loaded, url: str | None) -> None:
    """The deployment and A/B success rates of the rollouts on record, to the Pushgateway."""
    if not url:
        return
    from sre_llm.deploy import history
    from sre_llm.deploy import rollout as ro
    from sre_llm.retrain import metrics, names

    name = loaded.release.metadata.name
    found = history.rates(history.transitions(root, name, f"{ro.folder(loaded)}/{ro.TRAFFIC}"))
    by_metric = {metric: found[field] for metric, (field, _, _) in names.RATES.items() if field in found}
    if by_metric:
        metrics.push(url, "sre-llm-rollout", metrics.LoopFigures(model=name, rates=by_metric))


def _load(spec: str):
    from sre_llm import api

    (loaded,) = api.validate([spec])
    return loaded


def _print_change(change, as_json: bool, report: dict | None = None) -> None:
    if as_json:
        _ok({**change.to_dict(), **({"report": report} if report is not None else {})})
        return
    click.echo(change.message.rstrip("\n"))
    if change.commit:
        click.echo(f"committed {change.commit[:12]} ({', '.join(change.paths)})")


@click.group()
def rollout() -> None:
    """Progressive delivery of a model version: A/B test, then steps to 100 %, or back.

    \b
    State lives in rollouts/<name>/ in the GitOps repo (a Kustomize component Flux applies over
    rendered/<name>/k8s/); every stage move is one commit that changes the traffic block.
      sre-llm rollout start specs/x.yaml                    # challenger = the spec's version
      sre-llm rollout analyze specs/x.yaml --prometheus URL # advance, hold or roll back
      sre-llm rollout status specs/x.yaml
    """


@rollout.command()
@_common
@click.option("--champion", help="Version serving now [default: the registry's champion].")
@click.option("--challenger", help="Version to roll out [default: the registry's challenger, else the spec's version].")
@PUSH
def start(spec: str, root: str, metrics_dir: str | None, as_json: bool, champion: str | None, challenger: str | None,
          pushgateway: str | None) -> None:
    """Start rolling out the spec's version; the first stage's split is committed."""
    from sre_llm.deploy import rollout as ro

    loaded = _load(spec)
    _print_change(ro.start(root, loaded, champion, challenger, metrics_dir=metrics_dir), as_json)
    _push(root, loaded, pushgateway)


@rollout.command()
@_common
def status(spec: str, root: str, metrics_dir: str | None, as_json: bool) -> None:
    """Show the committed rollout state (phase, stage, split, failed checks)."""
    from sre_llm.deploy import rollout as ro
    from sre_llm.deploy import traffic as tr

    loaded = _load(spec)
    state = ro.read_state(root, loaded)
    stages = [{"name": s.name, "percent": s.percent, "duration_s": s.duration_s} for s in tr.stages(loaded.release)]
    if as_json:
        _ok({"state": state.to_dict() if state else None, "stages": stages})
        return
    if state is None:
        click.echo(f"{loaded.release.metadata.name}: no rollout started")
        return
    click.echo(f"{state.model}: {state.phase}; champion {state.champion} {100 - state.percent} %"
               + (f", challenger {state.challenger} {state.percent} %" if state.phase == "progressing" else ""))
    for s in stages:
        mark = "→" if s["name"] == state.stage and state.phase == "progressing" else " "
        click.echo(f"  {mark} {s['name']:<8} {s['percent']:>3} %  {s['duration_s']} s")
    click.echo(f"stage started {state.stage_started}; failed checks {state.failed_checks}; "
               f"last decision {state.last_decision or '-'}")


@rollout.command()
@_common
@click.option("--prometheus", "prometheus_url", required=True, envvar="SRE_LLM_PROMETHEUS_URL",
              help="Prometheus base URL, e.g. http://prometheus.monitoring:9090.")
@click.option("--dry-run", is_flag=True, help="Decide and print; commit nothing.")
@PUSH
def analyze(spec: str, root: str, metrics_dir: str | None, as_json: bool, prometheus_url: str, dry_run: bool,
            pushgateway: str | None) -> None:
    """Read both arms' metrics and advance, hold or roll back (exit 1 on a rollback)."""
    from sre_llm.deploy import analysis, prometheus

    loaded = _load(spec)
    report, change = analysis.analyze(root, loaded, lambda q: prometheus.query(prometheus_url, q),
                                      dry_run=dry_run, metrics_dir=metrics_dir)
    if change is not None:  # a rollback's figures are pushed before its exit 1
        _push(root, loaded, pushgateway)
    if report["decision"] == "rollback":  # exit 1; under --json the report rides on the error object
        if not as_json:
            if change is None:
                click.echo("\n".join(analysis.evidence_lines(report)))
            else:
                _print_change(change, as_json, report)
        raise CheckFailed(f"rolled back: {report['reason']}", code="rolled_back",
                          details={"report": report, **(change.to_dict() if change is not None else {})})
    if change is None:
        if as_json:
            _ok({"report": report})
        else:
            click.echo("\n".join(analysis.evidence_lines(report)))
    else:
        _print_change(change, as_json, report)


@rollout.command()
@_common
@click.option("--percent", type=int, help="Set the challenger's share by hand instead of the next stage.")
@PUSH
def advance(spec: str, root: str, metrics_dir: str | None, as_json: bool, percent: int | None,
            pushgateway: str | None) -> None:
    """Move to the next stage now, without analysis (or to --percent)."""
    from sre_llm.deploy import rollout as ro

    loaded = _load(spec)
    change = ro.advance(root, loaded, decision="manual-advance", percent=percent, metrics_dir=metrics_dir,
                        evidence=["Advanced by hand (no analysis)."])
    _print_change(change, as_json)
    _push(root, loaded, pushgateway)


@rollout.command()
@_common
@click.option("--reason", default="aborted by hand", show_default=True, help="Written into the commit.")
@PUSH
def abort(spec: str, root: str, metrics_dir: str | None, as_json: bool, reason: str, pushgateway: str | None) -> None:
    """Send all traffic back to the champion now."""
    from sre_llm.deploy import rollout as ro

    loaded = _load(spec)
    change = ro.roll_back(root, loaded, {"reason": reason}, [f"Reason: {reason}"], automatic=False,
                          metrics_dir=metrics_dir)
    _print_change(change, as_json)
    _push(root, loaded, pushgateway)


@click.command()
@click.argument("ref", metavar="VERSION_OR_DIR")
@click.option("--spec", "spec_path", required=True, type=click.Path(dir_okay=False),
              help="The release spec (served name, max model length, LoRA base, template, answer format).")
@ROOT_OPTION
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port of the gateway.")
@click.option("--python", "python", type=click.Path(dir_okay=False),
              help="Python of the vLLM venv [default: $SRE_LLM_SERVE_PYTHON or .venv-serve/bin/python].")
@click.option("--log", type=click.Path(dir_okay=False), help="vLLM's log file [default: .cache/serve/vllm-PORT.log].")
@click.option("--ready-timeout", default=600, show_default=True, type=click.IntRange(1), help="Seconds to wait for vLLM.")
@click.option("--kv-cache-gib", default=1, show_default=True, type=click.IntRange(1), help="vLLM CPU KV-cache size.")
@click.option("--passthrough", envvar="SRE_LLM_PASSTHROUGH_URL",
              help="An Ollama URL for prompts no adapter understands (agent-sre's health reports) [default: 422].")
@click.option("--vllm-cpus", "cpus", default="auto", show_default=True, envvar="SRE_LLM_VLLM_CPUS", metavar="auto|all|LIST",
              help="CPUs vLLM may use, as a list (1-3) or all; auto: all but the first, kept for the gateway as in "
                   "the pod, on 4 or more CPUs, else all.")
@click.option("--json", "as_json", is_flag=True,
              help="Once ready, print one JSON line {\"ok\": true, \"url\": …} on stdout (errors: the one error object).")
def serve(ref: str, spec_path: str, root: str, port: int, python: str | None, log: str | None,
          ready_timeout: int, kv_cache_gib: int, passthrough: str | None, cpus: str, as_json: bool) -> None:
    """Serve a model version (or a model directory) on 127.0.0.1: vLLM behind the sre-llm gateway.

    \b
    The gateway on --port is the one the cluster runs: Ollama's /api/generate, /api/chat,
    /api/tags (agent-sre: OLLAMA_URL=http://127.0.0.1:PORT, MODEL_BACKEND=ollama) and OpenAI's
    /v1/chat/completions (tools → tool_calls), /v1/models; /healthz, /readyz, /metrics. Every
    answer is grounded (vLLM structured outputs) and guarded. Stops on Ctrl-C / SIGTERM.
    """
    import signal as _signal
    import threading

    from sre_llm.deploy import serve as sv

    loaded = _load(spec_path)
    target = sv.resolve(ref, loaded, root)
    click.echo(f"starting vLLM for {loaded.release.metadata.name} {target.version} ({target.model}) …", err=True)
    running = sv.start(loaded, target, port, python=python, log=log, ready_timeout=ready_timeout,
                       kv_cache_gib=kv_cache_gib, passthrough=passthrough, cpus=cpus)
    stop = threading.Event()
    for sig in (_signal.SIGTERM, _signal.SIGINT):
        _signal.signal(sig, lambda *_: stop.set())
    if as_json:
        import json

        click.echo(json.dumps({"ok": True, "url": running.url, "model": loaded.release.metadata.name,
                               "version": target.version, "vllm_url": running.vllm_url, "log": str(running.log),
                               "vllm_cpus": running.vllm_cpus},
                              sort_keys=True))
    else:
        click.echo(f"serving {running.url} (model {loaded.release.metadata.name} {target.version}; Ollama /api, "
                   f"OpenAI /v1; vLLM {running.vllm_url}"
                   + (f" on CPUs {running.vllm_cpus}" if running.vllm_cpus else "") + f", log {running.log})")
    try:
        while not stop.is_set() and running.vllm.poll() is None:
            stop.wait(1.0)
    finally:
        code = running.vllm.poll()
        running.stop()
    if code is not None:
        raise CheckFailed(f"vLLM exited with {code} (log {running.log})")


def install(cli: click.Group) -> None:
    """Register the deployment commands on the top-level group."""
    cli.add_command(rollout)
    cli.add_command(serve)
