"""The retrain report: JSON for machines, Markdown for people (and the PR body of the promotion)."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def markdown(r: dict[str, Any]) -> str:
    """One page: the verdict and its reason, the McNemar table, the slices, the data and its drift."""
    lines = [f"### sre-llm retrain: {r['model']}", "",
             f"**{r['outcome'].capitalize()}** — {r['reason']}", "",
             "| | |", "|---|---|",
             f"| champion | {r.get('champion') or '—'} |",
             f"| challenger | {r.get('challenger') or 'not trained'} |",
             f"| mode | {r.get('mode') or '—'} |"]
    if r.get("branch"):
        lines.append(f"| promotion branch | `{r['branch']}` ({(r.get('commit') or '')[:12]}) |")
    data = r.get("data") or {}
    if data:
        new = data.get("new", {})
        lines += [(f"| new examples | {data.get('new_total', 0)} (train {new.get('train', 0)}, validation "
                   f"{new.get('validation', 0)}, test {new.get('test', 0)}) |"),
                  (f"| old examples | {data.get('kept', 0)} kept in their split, {data.get('moved', 0)} moved, "
                   f"{data.get('dropped', 0)} dropped |")]
    mc = r.get("mcnemar")
    if mc:
        lines += ["", f"#### McNemar's test ({mc['method']}, {mc['n']} paired examples)", "",
                  "| | challenger right | challenger wrong |", "|---|---|---|",
                  f"| **champion right** | {mc['both_right']} | {mc['champion_only']} |",
                  f"| **champion wrong** | {mc['challenger_only']} | {mc['both_wrong']} |", "",
                  f"p = {mc['p_value']:.4g}" + (f", χ² = {mc['statistic']:.3f}" if mc.get("statistic") is not None else "")
                  + f"; significance {r['significance']}"]
    slices = r.get("slices")
    if slices:
        lines += ["", "#### Parameter accuracy by slice", "", "| slice | examples | champion | challenger |", "|---|---|---|---|"]
        for name, s in slices.items():
            lines.append(f"| {name} | {s['examples']} | {_pct(s['champion'])} | {_pct(s['challenger'])} |")
    gates = r.get("gates")
    if gates:
        lines += ["", "#### Challenger gates", ""] + [f"- {g}" for g in gates]
    drift = data.get("drift") if data else None
    if drift is not None:
        lines += ["", "#### Data drift since the champion's data", "",
                  "- new alert names: " + (", ".join(f"`{n}`" for n in drift["new_alertnames"]) or "none"),
                  "- new label sets: " + ("; ".join("`{" + ", ".join(s) + "}`" for s in drift["new_label_sets"]) or "none")]
    return "\n".join(lines) + "\n"
