"""``sre-llm retrain``: a thin shell over :func:`sre_llm.retrain.loop.retrain`."""

from __future__ import annotations

import contextlib
import sys

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION, ok

PUSHGATEWAY_OPTION = click.option(
    "--pushgateway", "pushgateway", metavar="URL",
    help="Push the loop's health metrics to this Pushgateway (default: $SRE_LLM_PUSHGATEWAY; none: no push).")


@click.command("retrain")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(["auto", "incremental", "full"]), default="auto", show_default=True,
              help="auto follows spec.retrain's schedule (skips when the champion is younger than incremental_every; "
                   "full from the base when the last full training is older than full_every).")
@PUSHGATEWAY_OPTION
@ROOT_OPTION
@JSON_OPTION
def retrain_cmd(spec: str, mode: str, pushgateway: str | None, root: str, as_json: bool) -> None:
    """One turn of continuous learning: new data → challenger → McNemar against the champion.

    Builds the merged dataset (old examples keep their split, checked), trains (warm start from
    the champion, or full), scores challenger and champion on the same rows (the champion's frozen
    test split plus the new test slice), registers the challenger and, only when it is
    significantly better and passes every gate, signs it and commits its promotion on the branch
    <retrain.branch_prefix>-<name>-<version> (the workflow opens the pull request). Writes
    runs/<name>/retrain/<stamp>/report.json and report.md either way. Exit 0 when promoted or
    refused with a reason, 1 when a check failed (a split moved, training failed, a push failed),
    2 on bad input.
    """
    from sre_llm.retrain import metrics
    from sre_llm.retrain.loop import retrain

    with contextlib.redirect_stdout(sys.stderr):  # trainers print while loading; stdout is ours
        outcome = retrain(spec, root=root, mode=mode, progress=lambda m: click.echo(m, err=True))
    report = outcome.report
    url = metrics.gateway(pushgateway)
    if url:
        metrics.push(url, "sre_llm_retrain", metrics.loop_figures(root, report["model"], report))
    if as_json:
        ok(report=report, files=[str(p) for p in outcome.paths], pushed=bool(url))
    else:
        click.echo(f"{report['outcome']}: {report['reason']}")
        click.echo(f"wrote {', '.join(str(p) for p in outcome.paths)}")
