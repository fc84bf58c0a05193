"""``sre-llm plan``: a thin shell over :func:`sre_llm.plan.plan`."""

from __future__ import annotations

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION, ok


@click.command("plan")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--base", help="Commit to compare with [default: the merge base with origin/main, else with main, "
                             "else HEAD~1; the report says which].")
@click.option("--format", "fmt", type=click.Choice(["markdown", "text"]), default="markdown", show_default=True,
              help="markdown: the pull-request comment; text: for a terminal.")
@click.option("--gpu-hour-cost", type=click.FloatRange(min=0),
              help="Price of a GPU-hour for this estimate [default: spec.ci.gpu_hour_cost].")
@click.option("--templates", type=click.Path(file_okay=False), help="Folder of templates overriding the built-in ones "
              "(the same as given to render).")
@ROOT_OPTION
@JSON_OPTION
def plan_cmd(spec: str, base: str | None, fmt: str, gpu_hour_cost: float | None, templates: str | None, root: str,
             as_json: bool) -> None:
    """Say what merging SPEC's change would do, before any GPU time: rendered files created /
    changed / removed against --base, retrain or only re-render (a digest of the training inputs:
    base model, dataset settings, training fields, the LLaMA Factory config), gates old → new, the
    rollout stages, and the retrain's GPU-hours and cost from the runs on record.

    \b
    Run it from the repository root (like render). Writes nothing; exit 0 whatever the verdict.
    --json carries "retrain" (true/false) and "runner" (the runs-on labels) for workflows.
    """
    from sre_llm import plan as planmod

    result = planmod.plan(spec, base=base, root=root, gpu_hour_cost=gpu_hour_cost, templates=templates)
    if as_json:
        ok({**result.to_dict(), "markdown": planmod.markdown(result)})
    else:
        click.echo(planmod.markdown(result) if fmt == "markdown" else planmod.text(result), nl=False)
