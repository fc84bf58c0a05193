"""``sre-llm dataset …`` and ``sre-llm collect …``: thin click commands over the library.

Importing this module is cheap (click only); every command imports what it needs in its body.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION, with_options
from sre_llm.clikit import ok as _ok


@contextmanager
def _progress(enabled: bool) -> Iterator:
    """A rich progress display on stderr (only on a terminal), as a pipeline progress callback."""
    if not enabled or not sys.stderr.isatty():
        yield lambda stage, n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, int] = {}
        total: dict[str, int] = {}

        def update(stage: str, n: int) -> None:
            if stage == "read":
                total["n"] = n
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total.get("n"))
            bar.advance(tasks[stage], n)

        yield update


@click.group("dataset")
def dataset_group() -> None:
    """Build the training data: collect → label → redact → dedupe → split → (encrypt) → publish."""


@dataset_group.command("build")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--input", "inputs", multiple=True, help="Also read raw records from this JSONL file (glob ok; repeatable).")
@ROOT_OPTION
@JSON_OPTION
def build_cmd(spec: str, inputs: tuple[str, ...], root: str, as_json: bool) -> None:
    """Build and publish datasets/<name>/<digest>/ from the spec's dataset section.

    Points datasets/<name>/current at the result. Exit 2 when fewer than min_examples valid
    examples remain (nothing is written then).
    """
    from sre_llm import api
    from sre_llm.dataset.build import build

    (loaded,) = api.validate([spec])
    with _progress(not as_json) as progress:
        built = build(loaded.release, root=root, inputs=inputs, progress=progress, spec_path=spec)
    if as_json:
        _ok({"path": str(built.path), "reused": built.reused, "card": built.card})
        return
    st = built.card["stats"]
    click.echo(f"{'unchanged' if built.reused else 'built'}  {built.path}  ({st['examples']} examples: "
               + ", ".join(f"{k} {v}" for k, v in st["splits"].items()) + ")")
    click.echo(f"duplicates removed {st['duplicates']['exact'] + st['duplicates']['normalized']}, "
               f"quarantined {st['quarantined']['total']}, redactions {sum(st['redactions'].values())}, "
               f"unlabelled {st.get('unlabelled', 0)} (never trained as none; list them with "
               f"`sre-llm dataset unlabelled {spec}`)")
    click.echo(f"current -> {built.digest}")


@dataset_group.command("show")
@click.argument("target", default="")
@ROOT_OPTION
@JSON_OPTION
def show_cmd(target: str, root: str, as_json: bool) -> None:
    """Show a built dataset's card. TARGET: a spec, a dataset folder, or a dataset name."""
    from sre_llm.dataset.build import show
    from sre_llm.errors import BadInput

    if not target:
        names = sorted(p.name for p in (Path(root) / "datasets").glob("*") if (p / "current").exists())
        if len(names) != 1:
            raise BadInput("name a dataset (spec, folder or name): " + (", ".join(names) or "none built yet"))
        target = names[0]
    card = show(target, root)
    if as_json:
        _ok(card)
        return
    from sre_llm.dataset.card import markdown

    click.echo(f"{card['path']} -> {card['resolved']}\n")
    click.echo(markdown(card), nl=False)


@dataset_group.command("synth")
@click.option("--count", type=click.IntRange(1, 1_000_000), default=2000, show_default=True, help="Alerts to generate.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Random seed.")
@click.option("--vocabulary", default="main", show_default=True, metavar="main|alt|FILE",
              help="Names and wordings to draw from: main (the synthetic source's), alt (the frozen "
              "out-of-distribution one) or a JSON file of the same shape.")
@click.option("--golden", is_flag=True,
              help="Write a golden set instead of raw alerts: every labelled example as alpaca JSONL with literal "
              "answers, through the dataset pipeline (labelling, redaction, dedupe), for `sre-llm eval --test`.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL file to write (atomically).")
@JSON_OPTION
def synth_cmd(count: int, seed: int, vocabulary: str, golden: bool, out: str, as_json: bool) -> None:
    """Write a seeded synthetic corpus of raw alert records (the format collectors write).

    \b
    An out-of-distribution golden set for `sre-llm eval --test`:
      sre-llm dataset synth --vocabulary alt --golden --count 1200 --seed 1 --out ood.jsonl
      sre-llm eval SPEC --model RUN --test ood.jsonl
    """
    from sre_llm.dataset import synth
    from sre_llm.fsutil import write_atomic

    rows = synth.golden(count, seed, vocabulary) if golden else synth.generate(count, seed, vocabulary_name=vocabulary)
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows]
    write_atomic(out, "".join(lines))
    what = "examples" if golden else "alerts"
    if as_json:
        _ok({"path": out, "alerts": count, what: len(lines), "seed": seed, "vocabulary": vocabulary, "golden": golden})
    else:
        click.echo(f"wrote {len(lines)} {what} ({vocabulary} vocabulary, {count} alerts drawn) to {out}")


@dataset_group.command("decrypt")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--identity", "identity", required=True, help="age identity reference: env:NAME or file:PATH.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the plaintext (created 0700).")
@JSON_OPTION
def decrypt_cmd(folder: str, identity: str, out: str, as_json: bool) -> None:
    """Decrypt an encrypted dataset folder for training (all or nothing per file)."""
    from sre_llm.dataset.crypto import decrypt_folder

    paths = [str(p) for p in decrypt_folder(folder, identity, out)]
    if as_json:
        _ok(out=out, files=paths)
    else:
        for path in paths:
            click.echo(f"decrypted {path}")


def _unlabelled_cmd(spec: str, inputs: tuple[str, ...], fmt: str | None, out: str | None, root: str,
                    as_json: bool) -> None:
    """List the alerts no evidence labels, as a file to fill in and add back as a `labels` source.

    \b
    An alert is unlabelled when no labels row, action, annotation or self-resolution (within
    dataset.labelling.self_resolve_window) says what was right: it is never trained on as `none`.
    Fill in lambda_function (`none` when no action was needed) and lambda_parameters (JSON), then
      sources: [..., {type: labels, path: labels.csv}]
    and rebuild. Rows left empty stay unlabelled.
    """
    from sre_llm import api
    from sre_llm.dataset import labelfile
    from sre_llm.dataset.build import unlabelled
    from sre_llm.errors import BadInput
    from sre_llm.fsutil import write_atomic

    if fmt is None:
        fmt = (labelfile.file_format(out) if out else None) or "csv"
    elif out and labelfile.file_format(out) not in (None, fmt):
        raise BadInput(f"--out {out}: the suffix says {labelfile.file_format(out)}, --format says {fmt}")
    (loaded,) = api.validate([spec])
    result = unlabelled(loaded.release, root=root, inputs=inputs)
    rows = result.unlabelled
    text = labelfile.render(rows, fmt)
    if out:  # alert text, redacted but in the clear: private when the dataset is encrypted at rest
        write_atomic(out, text, mode=0o600 if loaded.release.spec.dataset.encryption else 0o644)
    if as_json:
        _ok({"count": len(rows), "format": fmt, "labelled": result.stats["examples"],
             "evidence": result.stats["evidence"], **({"out": out} if out else {"alerts": rows})})
    elif out:
        click.echo(f"wrote {len(rows)} unlabelled alert(s) to {out} ({result.stats['examples']} labelled examples)")
    else:
        click.echo(text, nl=False)


dataset_group.command("unlabelled")(with_options(
    _unlabelled_cmd,
    click.argument("spec", type=click.Path(dir_okay=False)),
    click.option("--input", "inputs", multiple=True, help="Also read raw records from this JSONL file (glob ok; repeatable)."),
    click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
                 help="File format [default: from --out's suffix, else csv]."),
    click.option("--out", type=click.Path(dir_okay=False), help="Write the list here (atomically) instead of stdout."),
    ROOT_OPTION,
))


@dataset_group.command("forget")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--incident", help="Alertmanager fingerprint (or incident id) of the alert to remove.")
@click.option("--label", help="Remove every alert carrying this label value: NAME=VALUE.")
@ROOT_OPTION
@JSON_OPTION
def forget_cmd(spec: str, incident: str | None, label: str | None, root: str, as_json: bool) -> None:
    """Remove an incident (or a label value) from the raw stores and every built dataset.

    Rewrites the spec's alertmanager stores and every dataset under datasets/ atomically (a
    changed dataset gets a new digest folder; `current` follows), then lists the registered
    models whose lineage names a changed dataset: retrain or withdraw those.
    """
    from sre_llm import api
    from sre_llm.dataset.forget import Selector, forget

    selector = Selector.parse(incident, label)
    (loaded,) = api.validate([spec])
    result = forget(loaded.release, selector, root)
    if as_json:
        _ok(result)
        return
    for s in result["stores"]:
        click.echo(f"store {s['store']}: {s['alerts_removed']} alert(s) removed")
    for d in result["datasets"]:
        rows = sum(d["rows_removed"].values())
        click.echo(f"dataset {d['dataset']}: {rows} row(s) removed -> {d['path']}")
    if not result["stores"] and not result["datasets"]:
        click.echo("nothing matched")
    for m in result["models"]:
        click.echo(f"model {m['model']} {m['version']} ({m['status']}{', ' + ', '.join(m['aliases']) if m['aliases'] else ''}): "
                   f"{m['lineage']}")
    for o in result["not_handled"]:
        click.echo(f"not handled: {o['type']} {o['path']}: {o['note']}", err=True)


@dataset_group.command("prune")
@click.argument("spec", type=click.Path(dir_okay=False))
@ROOT_OPTION
@JSON_OPTION
def prune_cmd(spec: str, root: str, as_json: bool) -> None:
    """Delete raw payloads and dataset folders older than dataset.retention (never `current`)."""
    from sre_llm import api
    from sre_llm.dataset.retention import prune

    (loaded,) = api.validate([spec])
    result = prune(loaded.release, root)
    if as_json:
        _ok(result)
        return
    for r in result["raw"]:
        click.echo(f"{r['file']}: {r['payloads_removed']} payload(s) past {result['retention']['raw']} removed")
    for d in result["datasets"]:
        click.echo(f"{d}: older than {result['retention']['datasets']}, removed")
    if not result["raw"] and not result["datasets"]:
        click.echo("nothing past retention" if any(result["retention"].values()) else "no dataset.retention set")


@click.group("collect")
def collect_group() -> None:
    """Collect raw records from Prometheus, Alertmanager, runbook logs, Linear and git."""


def register(cli: click.Group) -> None:
    """Add the ``dataset`` and ``collect`` groups to the main CLI."""
    from sre_llm.collect.cli import add_commands

    add_commands(collect_group)
    cli.add_command(dataset_group)
    cli.add_command(collect_group)
