"""``sre-llm eval``: a thin shell over :mod:`sre_llm.evaluate.harness` (heavy imports inside)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from sre_llm.errors import BadInput, CheckFailed


def _gate_lines(result: dict) -> list[str]:
    from sre_llm.evaluate.gates import GateResult

    return [f"  {'pass' if g['passed'] else 'FAIL'}  {GateResult(**g).describe()}" for g in result["gates"]]


@click.command("eval")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--model", "model", type=click.Path(file_okay=False),
              help="Run folder, its output/, a LoRA adapter folder, a full model folder, or 'latest' (the spec's last run).")
@click.option("--baseline", type=click.Choice(["base", "none"]), default=None,
              help="Also score the untrained base model (default: the spec's evaluation.baseline).")
@click.option("--adversarial/--no-adversarial", default=None, help="Run the adversarial suite (default: the spec's).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Where eval.json and the report go (default: <run>/eval).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override generation.batch_size.")
@click.option("--latency-samples", type=click.IntRange(min=0), default=16, show_default=True,
              help="Examples answered one at a time to measure latency.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch (default: torch's choice).")
@click.option("--rescore", "rescore", type=click.Path(dir_okay=False),
              help="Score a stored eval.json again (no model): gates from SPEC, report rewritten.")
@click.option("--rendered", "rendered_root", default="rendered", show_default=True, help="Folder rendered releases are under.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")
def eval_command(spec: str, model: str | None, baseline: str | None, adversarial: bool | None, out: str | None,
                 batch_size: int | None, latency_samples: int, threads: int | None, rescore: str | None,
                 rendered_root: str, as_json: bool) -> None:
    """Evaluate a trained model on the release's held-out test split and check its gates.

    SPEC is a model-release spec (its rendered eval.yaml is read) or an eval.yaml itself.
    Writes eval.json (every prediction), report.md and report.html. Exit 1 when a gate fails,
    naming each failing gate and its figure in one line; exit 2 on bad input.
    """
    from sre_llm.evaluate import harness
    from sre_llm.evaluate.gates import eval_config_path

    config = eval_config_path(spec, rendered_root)
    identity = None
    if config != Path(spec):  # a model-release spec: it names the dataset's identity and its runs
        from sre_llm.spec.load import load_spec

        release = load_spec(spec).release
        enc = release.spec.dataset.encryption
        identity = enc.identity if enc else None
        if model == "latest":
            from sre_llm.execute.runs import last_run

            found = last_run(Path("."), release.metadata.name, release.metadata.version)
            if found is None:
                raise BadInput(f"--model latest: no run of {release.metadata.name} {release.metadata.version} under runs/; run `sre-llm train {spec}`")
            model = str(found)
    if rescore:
        result = harness.rescore(rescore, config)
        out_dir = Path(out) if out else Path(rescore).parent
    else:
        if not model:
            raise BadInput("eval: --model is required (or --rescore EVAL_JSON)")
        # Libraries print to stdout while loading; stdout is for our output only (--json).
        with contextlib.redirect_stdout(sys.stderr):
            result = harness.evaluate(config, model, baseline=baseline, adversarial=adversarial, batch_size=batch_size,
                                      latency_samples=latency_samples, threads=threads, identity=identity,
                                      progress=lambda msg: click.echo(msg, err=True))
        out_dir = Path(out) if out else harness.default_out_dir(model)
    written = harness.write_results(result, out_dir)
    if as_json:
        summary = {k: result.get(k) for k in ("passed", "failure", "scores", "gates", "deltas")}
        summary["adversarial"] = {k: v for k, v in (result.get("adversarial") or {}).items() if k != "results"} or None
        summary["files"] = [str(p) for p in written]
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        s = result["scores"]
        click.echo(f"eval: {s['examples']} examples, {result['model']['kind']} model {result['model']['path']}")
        for line in _gate_lines(result):
            click.echo(line)
        if result.get("deltas"):
            click.echo("  vs base model: " + ", ".join(f"{k} {v:+.4f}" for k, v in result["deltas"].items() if v is not None))
        a = result.get("adversarial")
        if a:
            click.echo(f"  adversarial: {a['cases']} cases, raw model fooled {a['fooled_raw']}/{a['attacked_cases']}, "
                       f"unsafe after guard {a['unsafe_after_guard']}")
        click.echo(f"wrote {', '.join(str(p) for p in written if p.suffix != '.png')}")
    if not result["passed"]:
        raise CheckFailed(result["failure"])
