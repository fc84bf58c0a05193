"""The plan as people read it: Markdown for the pull-request comment, plain text for a terminal.

Byte-stable (no time, no host, sorted lists) so that re-posting an unchanged plan edits nothing,
and so that a golden file can hold it. The first line is an HTML comment naming the release: the
workflow finds its own earlier comment by it and edits that one instead of adding another.
"""

from __future__ import annotations

from sre_llm.plan.compute import Estimate, Plan

FILES_SHOWN = 30  # a PR comment past this many rows is scrolled past, not read


def marker(name: str) -> str:
    return f"<!-- sre-llm plan: {name} -->"


def _num(x: float) -> str:
    return f"{x:g}"


def _short(digest: str | None) -> str:
    return "none" if digest is None else digest.removeprefix("sha256:")[:12]


def _verdict(p: Plan) -> str:
    if p.action == "retrain":
        return (f"**Retrain** — the training configuration changed (`{_short(p.training_digest['base'])}` → "
                f"`{_short(p.training_digest['head'])}`); the new model must pass the gates before it is promoted.")
    if p.action == "re-render":
        return ("**Re-render, no retrain** — the training configuration is unchanged "
                f"(`{_short(p.training_digest['head'])}`); merging re-deploys the rendered files only.")
    return "**No change** — the rendered files and the training configuration are what the base has."


def _cost(e: Estimate, device: str) -> str:
    if e.runs == 0:
        return "no successful run of this release on record (`runs/<name>/*/*/run.json`): no estimate yet"
    if not e.gpus:
        price = f"0 GPU-hours ({device} run: no GPU cost)"
    elif e.gpu_hour_cost is None:
        price = f"{_num(e.gpu_hours or 0)} GPU-hours — no price: set `spec.ci.gpu_hour_cost`"
    else:
        price = (f"{_num(e.gpu_hours or 0)} GPU-hours — {_num(e.cost or 0)} {e.currency} at "
                 f"{_num(e.gpu_hour_cost)} {e.currency}/GPU-hour")
    return (f"{price}, {_num(round((e.wall_hours or 0) * 60, 1))} min wall clock "
            f"(median of the last {e.runs} successful run{'s' if e.runs != 1 else ''}, latest `{e.latest_run}`)")


def _rollout_line(p: Plan) -> str:
    stages = " → ".join(f"{'A/B ' if s.name == 'ab-test' else ''}{s.percent} % for {s.duration}" for s in p.rollout)
    rb = p.rollback
    return (f"{stages}; rolled back after {rb['failure_threshold']} failed analyses below "
            f"{_num(rb['min_success_rate'])} success rate, above {_num(rb['max_error_rate'])} error rate or "
            f"{_num(rb['max_p95_latency_ms'])} ms P95")


def markdown(p: Plan) -> str:
    """The pull-request comment."""
    c = p.counts
    out = [marker(p.name), f"### sre-llm plan: {p.name} {p.version}", "", _verdict(p), "",
           "| | |", "|---|---|",
           f"| compared with | `{p.base_ref}` at `{p.base_commit[:12]}` ({p.base_how}) |",
           (f"| rendered files | {c['changed']} changed, {c['created']} created, {c['removed']} removed, "
            f"{p.unchanged} unchanged |"),
           f"| retrain | {'yes' if p.retrain else 'no'} |",
           f"| CI runner | `{', '.join(p.runner)}` ({p.device}) |",
           f"| promotion | {'pull request for review' if p.review else 'on merge, when the gates pass'} |"]
    if p.retrain:
        out.append(f"| estimated cost | {_cost(p.estimate, p.device)} |")
        out += ["", "#### Why retrain", ""] + [f"- {r}" for r in p.reasons]
    if p.files:
        out += ["", "#### Rendered files", "", "| file | change |", "|---|---|"]
        out += [f"| `{f.path}` | {f.status} |" for f in p.files[:FILES_SHOWN]]
        if len(p.files) > FILES_SHOWN:
            out.append(f"| … and {len(p.files) - FILES_SHOWN} more | |")
    out += ["", "#### Gates", ""]
    if p.gates:
        out += ["| gate | bound | base | head |", "|---|---|---|---|"]
        out += [f"| {g.gate} | {g.bound} | {'—' if g.old is None else _num(g.old)} | {_num(g.new)} |" for g in p.gates]
    else:
        out.append("unchanged")
    out += ["", "#### Rollout", ""]
    if p.retrain:
        out.append(f"After promotion the new version rolls out: {_rollout_line(p)}.")
    elif p.action == "re-render":
        out.append("No new model version, so no rollout: Flux applies the changed files to the serving champion.")
    else:
        out.append("Nothing to roll out.")
    return "\n".join(out) + "\n"


def text(p: Plan) -> str:
    """The same for a terminal: one fact a line."""
    c = p.counts
    out = [f"{p.spec}: {p.summary} ({p.name} {p.version})",
           f"  compared with {p.base_ref} at {p.base_commit[:12]} ({p.base_how})",
           (f"  rendered files: {c['changed']} changed, {c['created']} created, {c['removed']} removed, "
            f"{p.unchanged} unchanged")]
    out += [f"    {f.status:>8}  {f.path}" for f in p.files]
    if p.retrain:
        out.append("  retrain because:")
        out += [f"    {r.replace('`', '')}" for r in p.reasons]
        out.append(f"  estimated cost: {_cost(p.estimate, p.device).replace('`', '')}")
        out.append(f"  rollout after promotion: {_rollout_line(p)}")
    for g in p.gates:
        out.append(f"  gate {g.gate} ({g.bound}): {'—' if g.old is None else _num(g.old)} → {_num(g.new)}")
    out.append(f"  CI runner: {', '.join(p.runner)}; promotion: {'pull request for review' if p.review else 'on merge'}")
    return "\n".join(out) + "\n"
