"""``sre-llm train`` and ``sre-llm export``: thin shells over :mod:`.train` and :mod:`.export`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION
from sre_llm.clikit import ok as _ok



@click.command("train")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of the last run of this release.")
@click.option("--dry-run", is_flag=True, help="Only the preflight: exit 0 if the run can start, 2 naming what cannot run.")
@click.option("--cluster", is_flag=True,
              help="Train on Kubernetes instead (training.cluster): kubectl apply the rendered PyTorchJob, follow its "
                   "status and the Master's log; exit 0 Succeeded, 1 Failed (with the reason).")
@ROOT_OPTION
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines on stdout instead of a progress bar: start, step, eval, note, end; last a "
                   "{\"ok\": …} line (the one error object on failure).")
def train_cmd(spec: str, resume: bool, dry_run: bool, cluster: bool, root: str, as_json: bool) -> None:
    """Fine-tune with LLaMA Factory from the spec's rendered config, in a fresh run folder.

    \b
    Renders first when rendered/ is stale; checks the machine, model and dataset before starting;
    builds the tiny base model when the spec says `builtin: tiny` and it is missing. Runs
    `llamafactory-cli train` offline (no hub, no telemetry) into runs/<name>/<version>/<run-id>/,
    which holds train.yaml, train.log, output/ (checkpoints, adapter) and run.json.

    Exit codes: 0 trained, 1 training failed (last lines of its output shown), 2 cannot run here
    (each setting named with the alternative), 130 stopped by Ctrl-C/SIGTERM (resume with --resume).
    """
    from sre_llm.execute import train as t
    from sre_llm.execute.progress import JsonReporter, RichReporter, fmt_loss

    base = Path(root)
    if cluster:
        _train_on_cluster(spec, resume or dry_run, base, as_json)
        return
    if dry_run:
        summary = t.dry_run(spec, base)
        if as_json:
            _ok(summary)
        else:
            extra = " (the tiny base model will be built first)" if summary["builds_base_model"] else ""
            click.echo(f"{spec}: ready to train {summary['model']} on {summary['dataset']}{extra}")
        return
    reporter = JsonReporter() if as_json else RichReporter()
    record = t.train(spec, reporter, resume=resume, base=base)
    if as_json:
        click.echo(json.dumps({"ok": True, "event": "result", "run": str(Path(record["output_dir"]).parent),
                                             "status": record.get("status")}, sort_keys=True))
    else:
        final = record["final"]
        where = record["adapter"]["path"] if record["adapter"] else record["output_dir"]
        click.echo(f"trained in {record['duration_s']:.0f} s: train loss {fmt_loss(final['train_loss_first_logged'])} → "
                   f"{fmt_loss(final['train_loss_last_logged'])}, eval loss {fmt_loss(final['eval_loss'])}")
        click.echo(f"{'adapter' if record['adapter'] else 'model'}: {where}")
        click.echo(f"run record: {Path(record['output_dir']).parent / 'run.json'}")


def _train_on_cluster(spec: str, local_only: bool, base: Path, as_json: bool) -> None:
    from sre_llm.errors import BadInput
    from sre_llm.execute import cluster as cl
    from sre_llm.execute.progress import JsonReporter, RichReporter

    if local_only:
        raise BadInput("--cluster: --resume and --dry-run are for local runs; the cluster job starts afresh")
    record = cl.submit(spec, JsonReporter() if as_json else RichReporter(), base=base)
    if as_json:
        click.echo(json.dumps({"ok": True, "event": "result", "run": str(Path(record["log"]).parent),
                               "status": record["status"], "job": record["cluster"]["job"]}, sort_keys=True))
    else:
        click.echo(f"job {record['cluster']['namespace']}/{record['cluster']['job']} succeeded in "
                   f"{record['duration_s']:.0f} s; output pushed to {record['cluster']['output']}")
        click.echo(f"run record: {Path(record['log']).parent / 'run.json'}")


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Merge again over an earlier export.")
@ROOT_OPTION
@JSON_OPTION
def export_cmd(run: str, force: bool, root: str, as_json: bool) -> None:
    """Merge RUN's LoRA adapter into the unquantized base model (RUN/merged/), for serving engines."""
    from sre_llm.execute.export import export

    merged = export(run, Path(root), force=force)
    if as_json:
        _ok(merged)
    else:
        click.echo(f"merged model: {merged['path']} ({merged['digest']}, {merged['seconds']:.0f} s)")


def register(cli: click.Group) -> None:
    cli.add_command(train_cmd)
    cli.add_command(export_cmd)
