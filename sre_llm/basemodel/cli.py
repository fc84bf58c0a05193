"""``sre-llm base-model``: build the embedded tiny base model (thin shell over :mod:`.tiny`)."""

from __future__ import annotations

from dataclasses import asdict

import click

from sre_llm.basemodel.families import FAMILIES
from sre_llm.clikit import JSON_OPTION
from sre_llm.clikit import ok as _ok


@click.group("base-model")
def base_model_group() -> None:
    """Build base models locally (no hub access needed)."""


@base_model_group.command("tiny")
@click.option("--family", type=click.Choice(sorted(FAMILIES)), default="qwen2", show_default=True,
              help="Architecture; picks the tokenizer's special tokens for LLaMA Factory's template.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the model to.")
@click.option("--pretrain-steps", type=click.IntRange(min=0), default=None,
              help="Copy-task pre-training steps before saving (default 0: random weights, which measured best for the demo; each step is about 0.9 s on 2 cores).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for tokenizer, weights and data.")
@click.option("--force", is_flag=True, help="Replace a model already at --out.")
@JSON_OPTION
def tiny(family: str, out: str, pretrain_steps: int | None, seed: int, force: bool, as_json: bool) -> None:
    """Build a ~1.3 M-parameter model of FAMILY with its own byte-level BPE tokenizer into OUT.

    Deterministic: the same options on the same machine give the same file digests. Used as the
    base model of specs/tiny-cpu.yaml (`base_model.builtin: tiny`), for demos and tests on CPU.
    """
    from sre_llm.basemodel.tiny import TinyConfig, build_tiny

    config = TinyConfig(family=family, seed=seed)
    if pretrain_steps is not None:
        config = TinyConfig(**{**asdict(config), "pretrain_steps": pretrain_steps})
    report = _build(out, config, force, as_json)
    if as_json:
        _ok(asdict(report))
    else:
        pretrained = (f"pre-training {report.seconds_pretrain:.0f} s, loss {report.pretrain_loss_first} → "
                      f"{report.pretrain_loss_last}" if config.pretrain_steps else "random weights, no pre-training")
        click.echo(f"built {report.family} tiny model ({report.parameters:,} parameters) in {report.out} "
                   f"in {report.seconds_total:.0f} s ({pretrained})")


def _build(out: str, config, force: bool, quiet: bool):
    from sre_llm.basemodel.tiny import build_tiny

    if quiet or not config.pretrain_steps:
        return build_tiny(out, config, force=force)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("pre-training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("pretrain", total=config.pretrain_steps, loss=float("nan"))
        return build_tiny(out, config, force=force,
                          progress=lambda step, total, loss: bar.update(task, completed=step, loss=loss))
