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


def _emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


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
@click.option("--root", default=".", show_default=True, help="Folder datasets/ is under.")
@click.option("--json", "as_json", is_flag=True, help="Print the dataset card as JSON.")
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
        _emit({"path": str(built.path), "reused": built.reused, "card": built.card})
        return
    st = built.card["stats"]
    click.echo(f"{'unchanged' if built.reused else 'built'}  {built.path}  ({st['examples']} examples: "
               + ", ".join(f"{k} {v}" for k, v in st["splits"].items()) + ")")
    click.echo(f"duplicates removed {st['duplicates']['exact'] + st['duplicates']['normalized']}, "
               f"quarantined {st['quarantined']['total']}, redactions {sum(st['redactions'].values())}")
    click.echo(f"current -> {built.digest}")


@dataset_group.command("show")
@click.argument("target", default="")
@click.option("--root", default=".", show_default=True, help="Folder datasets/ is under.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
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
        _emit(card)
        return
    from sre_llm.dataset.card import markdown

    click.echo(f"{card['path']} -> {card['resolved']}\n")
    click.echo(markdown(card), nl=False)


@dataset_group.command("synth")
@click.option("--count", type=click.IntRange(1, 1_000_000), default=2000, show_default=True, help="Alerts to generate.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Random seed.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL file to write (atomically).")
def synth_cmd(count: int, seed: int, out: str) -> None:
    """Write a seeded synthetic corpus of raw alert records (the format collectors write)."""
    from sre_llm.dataset.synth import generate
    from sre_llm.fsutil import write_atomic

    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in generate(count, seed))
    write_atomic(out, text)
    click.echo(f"wrote {count} alerts to {out}")


@dataset_group.command("decrypt")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--identity", "identity", required=True, help="age identity reference: env:NAME or file:PATH.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the plaintext (created 0700).")
def decrypt_cmd(folder: str, identity: str, out: str) -> None:
    """Decrypt an encrypted dataset folder for training (all or nothing per file)."""
    from sre_llm.dataset.crypto import decrypt_folder

    for path in decrypt_folder(folder, identity, out):
        click.echo(f"decrypted {path}")


@click.group("collect")
def collect_group() -> None:
    """Collect raw records from Prometheus, Alertmanager, runbook logs, Linear and git."""


def register(cli: click.Group) -> None:
    """Add the ``dataset`` and ``collect`` groups to the main CLI."""
    from sre_llm.collect.cli import add_commands

    add_commands(collect_group)
    cli.add_command(dataset_group)
    cli.add_command(collect_group)
