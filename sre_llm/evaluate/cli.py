"""``sre-llm eval``: a thin shell over :mod:`sre_llm.evaluate.harness` (heavy imports inside)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION
from sre_llm.clikit import ok as _ok
from sre_llm.errors import BadInput, CheckFailed


def _gate_lines(result: dict) -> list[str]:
    from sre_llm.evaluate.gates import GateResult

    return [f"  {GateResult(**g).describe()}" for g in result["gates"]]


@click.command("eval")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--model", "model", type=click.Path(file_okay=False),
              help="Run folder, its output/, a LoRA adapter folder, a full model folder, or 'latest' (the spec's last run).")
@click.option("--baseline", type=click.Choice(["base", "champion", "none"]), default=None,
              help="Also score the untrained base model, or the registry's champion (under --root), on the same "
                   "rows (default: the spec's evaluation.baseline).")
@click.option("--test", "test", type=click.Path(exists=True),
              help="Score every row of this alpaca JSONL (or a dataset folder's test split) instead of the spec's "
                   "test split: a team's hand-checked incidents. Expected answers are literal values.")
@click.option("--grounding/--no-grounding", default=None,
              help="Also decode grounded answers, what the gateway serves, and judge the gates on them "
                   "(default: the spec's evaluation.grounding).")
@click.option("--adversarial/--no-adversarial", default=None, help="Run the adversarial suite (default: the spec's).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Where eval.json and the report go (default: <run>/eval).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override generation.batch_size.")
@click.option("--latency-samples", type=click.IntRange(min=0), default=16, show_default=True,
              help="Examples answered one at a time to measure latency.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch (default: torch's choice).")
@click.option("--rescore", "rescore", type=click.Path(dir_okay=False),
              help="Score a stored eval.json again (no model): gates from SPEC, report rewritten.")
@ROOT_OPTION
@click.option("--rendered", "rendered_root", help="Folder rendered releases are under [default: ROOT/rendered].")
@JSON_OPTION
def eval_command(spec: str, model: str | None, baseline: str | None, test: str | None, grounding: bool | None,
                 adversarial: bool | None, out: str | None,
                 batch_size: int | None, latency_samples: int, threads: int | None, rescore: str | None,
                 root: str, rendered_root: str | None, as_json: bool) -> None:
    """Evaluate a trained model on the release's held-out test split and check its gates.

    SPEC is a model-release spec (its rendered eval.yaml is read) or an eval.yaml itself.
    Writes eval.json (every prediction), report.md and report.html. Exit 1 when a gate fails,
    naming each failing gate and its figure in one line; exit 2 on bad input.
    """
    from sre_llm.evaluate import harness
    from sre_llm.evaluate.gates import eval_config_path

    config = eval_config_path(spec, rendered_root or Path(root) / "rendered")
    identity = None
    champion: tuple[str, str | None] | None = None
    if config != Path(spec):  # a model-release spec: it names the dataset's identity and its runs
        from sre_llm.spec.load import load_spec

        release = load_spec(spec).release
        enc = release.spec.dataset.encryption
        identity = enc.identity if enc else None
        if model == "latest":
            from sre_llm.execute.runs import last_run

            found = last_run(Path(root), release.metadata.name, release.metadata.version)
            if found is None:
                raise BadInput(f"--model latest: no run of {release.metadata.name} {release.metadata.version} under runs/; run `sre-llm train {spec}`")
            model = str(found)
        if baseline == "champion" or (baseline is None and release.spec.evaluation.baseline == "champion"):
            champion = _champion(root, release.metadata.name)
    elif baseline == "champion":
        raise BadInput("--baseline champion needs a model-release spec (it names the registered model)")
    if rescore:
        result = harness.rescore(rescore, config)
        out_dir = Path(out) if out else Path(rescore).parent
    else:
        if not model:
            raise BadInput("eval: --model is required (or --rescore EVAL_JSON)")
        # Libraries print to stdout while loading; stdout is for our output only (--json).
        with contextlib.redirect_stdout(sys.stderr):
            result = harness.evaluate(config, model, baseline=baseline, adversarial=adversarial, batch_size=batch_size,
                                      latency_samples=latency_samples, threads=threads, identity=identity, root=root,
                                      progress=lambda msg: click.echo(msg, err=True), grounding=grounding, test=test,
                                      baseline_model=champion[0] if champion else None,
                                      baseline_format=champion[1] if champion else None)
        out_dir = Path(out) if out else harness.default_out_dir(model)
    written = harness.write_results(result, out_dir)
    summary = {k: result.get(k) for k in ("passed", "failure", "scores", "gates", "deltas", "answer_format", "judged_on")}
    summary["grounded"] = (result.get("grounded") or {}).get("scores")
    summary["baseline"] = {k: (result.get("baseline") or {}).get(k) for k in ("kind", "model")} if result.get("baseline") else None
    summary["adversarial"] = {k: v for k, v in (result.get("adversarial") or {}).items() if k != "results"} or None
    summary["files"] = [str(p) for p in written]
    if as_json and result["passed"]:
        _ok(summary)
    elif not as_json:
        s = result["scores"]
        click.echo(f"eval: {s['examples']} examples, {result['model']['kind']} model {result['model']['path']}, "
                   f"answers {result.get('answer_format', 'literal-v1')}, gates judged on {result.get('judged_on', 'raw')} answers")
        for line in _gate_lines(result):
            click.echo(line)
        g = (result.get("grounded") or {}).get("scores")
        if g:
            click.echo("  raw vs grounded: " + ", ".join(
                f"{k} {s[k]:.3f} → {g[k]:.3f}" for k in ("remediation_accuracy", "parameter_accuracy", "false_positive_rate")
                if isinstance(s.get(k), (int, float)) and isinstance(g.get(k), (int, float))))
        if result.get("deltas"):
            versus = "champion" if (result.get("baseline") or {}).get("kind") == "champion" else "base model"
            click.echo(f"  vs {versus}: " + ", ".join(f"{k} {v:+.3f}" for k, v in result["deltas"].items() if v is not None))
        a = result.get("adversarial")
        if a:
            click.echo(f"  adversarial: {a['cases']} cases, raw model fooled {a['fooled_raw']}/{a['attacked_cases']}, "
                       f"unsafe after guard {a['unsafe_after_guard']}")
        click.echo(f"wrote {', '.join(str(p) for p in written if p.suffix != '.png')}")
    if not result["passed"]:
        raise CheckFailed(result["failure"], code="gates_failed", details=summary)


def _champion(root: str, name: str) -> tuple[str, str | None]:
    """The champion's model folder in the registry under ``root``, and the answer format its
    lineage records (a champion trained on literal values is scored as such)."""
    from sre_llm.registry import index as ix
    from sre_llm.registry.service import open_registry

    reg = open_registry(root)
    if name not in ix.models(reg.root):
        raise BadInput(f"--baseline champion: {name} is not registered under {reg.root / ix.REGISTRY_DIR}")
    index = reg.load(name)
    entry = index.get("champion")
    if entry is None:
        raise BadInput(f"--baseline champion: {name} has no champion yet (sre-llm registry promote VERSION)")
    folder = reg.store.local_tree(entry.artifact.digest)
    return str(folder), entry.dataset.answer_format  # None: the harness reads it as literal-v1
