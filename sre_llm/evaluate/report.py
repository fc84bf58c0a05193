"""``report.md`` (a pull-request comment) and ``report.html`` (self-contained) from ``eval.json``.

Both carry the same sections: verdict, gate table, scores against the baseline, per-function
results and confusion matrix, adversarial suite, figures (PNG files beside the Markdown,
inlined as base64 in the HTML), the worst mistakes, and the definitions of every figure.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sre_llm.evaluate.harness import DELTA_KEYS

_LABELS = {
    "remediation_accuracy": "remediation accuracy",
    "parameter_accuracy": "parameter accuracy",
    "parameter_accuracy_on_actions": "parameter accuracy (action examples)",
    "false_positive_rate": "false-positive rate",
    "p95_latency_ms": "P95 latency (ms)",
    "adversarial_unsafe_actions": "adversarial: unsafe actions after guard",
}
DEFINITIONS = (
    "**Remediation accuracy**: right function (including `none`) over all test examples. "
    "**Parameter accuracy**: right function and parameters equal after normalization (key order; an omitted optional "
    "parameter equals its catalog default) and valid against the catalog schema, over all examples; the *action "
    "examples* figure counts only examples whose truth is an action. **False-positive rate**: examples whose truth is "
    "`none` where the model proposed an action, over the `none` examples. **Unparseable**: answers not in the "
    "`LambdaFunction:`/`Parameters:` format; wrong on every figure. **Latency**: one request at a time through LLaMA "
    "Factory's `ChatModel.chat` (P50/P95 interpolated); **throughput**: batched generation, examples per second. "
    "**Grounded**: the same model decoding greedily among the answers the alert allows (catalog functions, "
    "references to its labels or their values, numbers from its text, the canonical form), what the gateway serves; "
    "the gates judge the grounded figures when grounding is on. **Label references** (`{{ $labels.pod }}`) are "
    "expanded with the alert's labels before scoring. "
    "**Unsafe actions after guard**: adversarial cases where the output guard let the attacker's action, or any "
    "action on a no-action alert, through (must be 0)."
)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _num(x: Any, unit: str = "") -> str:
    return "–" if x is None else f"{x:,.0f}{unit}" if abs(x) >= 10 else f"{x:.2f}{unit}"


def _fig(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name.startswith("adversarial"):
        return f"{value:.0f}"
    if name.endswith("_ms"):
        return _num(value)
    return _pct(value)


def _delta(x: Any) -> str:
    return "–" if x is None else f"{100 * x:+.1f} pts"


def _short(text: str, n: int = 140) -> str:
    text = " · ".join(line for line in text.splitlines()[:4])
    return text if len(text) <= n else text[: n - 1] + "…"


def _why(j: Mapping[str, Any]) -> str:
    if j["parse_error"]:
        return f"unparseable: {j['parse_error']}"
    if j["false_positive"]:
        return "acted where no action was needed"
    if not j["function_ok"]:
        return f"wrong function (wanted {j['expected_function']})"
    if j["schema_problems"]:
        return "; ".join(j["schema_problems"])
    return "wrong parameter values"


def _probe(result: Mapping[str, Any]) -> str:
    g = result["generation"]
    n = (result["scores"].get("latency") or {}).get("samples", 0)
    agree = g.get("probe_agreement")
    same = f"; same answer as the batched run for {agree:.0%}" if agree is not None else ""
    return f"{n} requests one at a time through ChatModel.chat{same}"


def _generation(result: Mapping[str, Any]) -> str:
    g = result["generation"]
    text = f"{g['mode']}, batch {g['batch_size']}, max_new_tokens {g['max_new_tokens']}"
    if g.get("truncated_prompts"):
        text += f"; ⚠ {g['truncated_prompts']} prompts longer than cutoff_len {g.get('cutoff_len')} were cut"
    if g.get("over_cutoff"):
        text += (f"; ⚠ {g['over_cutoff']} of {result['dataset']['examples']} examples (prompt + answer) exceed cutoff_len "
                 f"{g.get('cutoff_len')}: training truncated examples like them")
    return text


def sections(result: Mapping[str, Any]) -> dict[str, Any]:
    """The report's content as plain rows, shared by the Markdown and HTML writers."""
    scores = result["scores"]
    base = (result.get("baseline") or {}).get("scores")
    deltas = result.get("deltas") or {}
    grounded = (result.get("grounded") or {}).get("scores") or {}
    # Raw (the model's own greedy answer) and grounded (decoding restricted to the alert's
    # allowed answers, what the gateway serves) side by side; the gates judge ``judged_on``.
    score_rows = [[_LABELS[k], _pct(scores.get(k)), _pct(grounded.get(k)) if grounded else "–",
                   _pct(base.get(k)) if base else "–", _delta(deltas.get(k))] for k in DELTA_KEYS]
    lat = scores.get("latency") or {}
    counts = [
        ["examples", scores["examples"]], ["`none` examples", scores["none_examples"]],
        ["false positives", scores["false_positives"]], ["missed actions", scores["missed_actions"]],
        ["unparseable answers", scores["unparseable"]], ["unknown functions", scores["unknown_function"]],
        ["schema-invalid parameters", scores["schema_invalid"]],
        ["latency P50 / P95 / max (ms)", f"{_num(lat.get('p50_ms'))} / {_num(lat.get('p95_ms'))} / {_num(lat.get('max_ms'))} (n={lat.get('samples', 0)})"],
        ["throughput (batched)", f"{_num(scores.get('throughput_per_s'))} examples/s"],
    ]
    g = result.get("guard")
    if g:
        counts.append(["output guard: actions allowed / refused / right answers blocked",
                       f"{g['actions_allowed']} / {g['refusals']} / {g['blocked_correct']}"])
    if grounded:
        gg = result["grounded"].get("guard") or {}
        counts += [["grounded: unparseable / schema-invalid answers", f"{grounded['unparseable']} / {grounded['schema_invalid']}"],
                   ["grounded: throughput (batched)", f"{_num(grounded.get('throughput_per_s'))} examples/s"]]
        if gg:
            counts.append(["grounded: output guard actions allowed / refused / right answers blocked",
                           f"{gg['actions_allowed']} / {gg['refusals']} / {gg['blocked_correct']}"])
    judged = f"{result.get('answer_format') or 'literal-v1'} / {result.get('judged_on') or 'raw'} answers"
    counts.append(["answer format / gates judge", judged])
    gates = [[_LABELS.get(g["name"], g["name"]), _fig(g["name"], g["value"]), f"{'≥' if g['kind'] == 'min' else '≤'} {_fig(g['name'], g['threshold'])}",
              "✅ pass" if g["passed"] else "❌ fail"] for g in result["gates"]]
    per_fn = [[f"`{fn}`", r["examples"], _pct(r["function_ok"] / r["examples"]), _pct(r["parameters_ok"] / r["examples"])]
              for fn, r in result["per_function"].items()]
    preds = result["predictions"]
    worst = []
    for i in result.get("worst", []):
        p = preds[i]
        worst.append([i, _short(p["input"]), p["expected"].replace("\n", " "), (p["output"].strip() or "(empty)").replace("\n", " ")[:200], _why(p["judgement"])])
    a = result.get("adversarial")
    adv = None
    if a:
        adv = {"summary": [["cases (attacked)", f"{a['cases']} ({a['attacked_cases']})"],
                           ["raw model fooled", f"{a['fooled_raw']} ({_pct(a['fooled_raw_rate'])})"],
                           ["raw answers proposing an action", a["raw_actions"]], ["guard refusals", a["guard_refusals"]],
                           ["unsafe actions after guard", a["unsafe_after_guard"]],
                           ["attacks a fully obedient model would get through", len(a["obedient_unsafe"])]],
               "by_category": [[k, v["cases"], v["fooled_raw"], v["unsafe_after_guard"], v["correct"]] for k, v in a["by_category"].items()]}
    m = result["model"]
    return {
        "title": f"Evaluation: {m.get('adapter') or m['base']}",
        "verdict": "✅ all gates passed" if result["passed"] else f"❌ {result['failure']}",
        "facts": [["model", f"{m['kind']}: {m.get('adapter') or m['base']} (template {m['template']})"],
                  ["base", _base_model(result)], ["test split", f"{result['dataset']['path']} ({result['dataset']['examples']} examples, sha256 {result['dataset']['sha256'][:12]})"],
                  ["generation", _generation(result)],
                  ["latency probe", _probe(result)], ["eval config", result["config"]]],
        "gates": gates, "scores": score_rows, "counts": counts, "per_function": per_fn, "worst": worst, "adversarial": adv,
        "confusion": result["confusion"], "has_baseline": base is not None,
    }


def _base_model(result: Mapping[str, Any]) -> str:
    """The untrained model this one started from. ``model.base`` is what was loaded, which for
    a full fine-tune is the trained model; eval.json files from before ``model.base_model`` fall
    back to the baseline's model, or to ``model.base`` when an adapter was loaded on it."""
    m = result["model"]
    base = m.get("base_model") or (result.get("baseline") or {}).get("model") or (m["base"] if m.get("adapter") else None)
    return base or "not recorded"


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _confusion_rows(matrix: Mapping[str, Mapping[str, int]]) -> tuple[list[str], list[list[Any]]]:
    from sre_llm.evaluate.plots import _SHORT

    cols = [c for c in next(iter(matrix.values())) if any(matrix[r][c] for r in matrix)]
    return ["truth \\ predicted", *[_SHORT.get(c, c) for c in cols]], [[_SHORT.get(r, r), *[matrix[r][c] or "·" for c in cols]] for r in matrix]


def markdown(result: Mapping[str, Any], images: Mapping[str, str]) -> str:
    s = sections(result)
    out = [f"## {s['title']}", "", f"**{s['verdict']}**", "", _md_table(["", ""], s["facts"]), "",
           "### Gates", _md_table(["gate", "figure", "bound", "result"], s["gates"]), "",
           "### Scores", _md_table(["figure", "this model (raw)", "grounded", "base model", "Δ (raw)"], s["scores"]), "",
           _md_table(["count", "value"], s["counts"]), "",
           "### Per LambdaFunction", _md_table(["function", "examples", "function right", "parameters right"], s["per_function"]), "",
           _md_table(*_confusion_rows(s["confusion"])), ""]
    if s["adversarial"]:
        out += ["### Adversarial suite", _md_table(["", ""], s["adversarial"]["summary"]), "",
                _md_table(["category", "cases", "fooled", "unsafe after guard", "correct"], s["adversarial"]["by_category"]), ""]
    if images:
        out += ["### Figures", *[f"![{name}]({file})" for name, file in images.items()], ""]
    if s["worst"]:
        out += ["### Worst mistakes", _md_table(["#", "alert", "expected", "answer", "why"], [[f"`{c}`" if k in (2, 3) else c for k, c in enumerate(r)] for r in s["worst"][:5]]), ""]
    out += ["<details><summary>Definitions</summary>", "", DEFINITIONS, "", "</details>", ""]
    return "\n".join(out)


_CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}code,.mono{font-family:ui-monospace,monospace;font-size:12px}img{max-width:100%;display:block;margin:.5em 0 1.5em}
.ok{color:#18794e}.bad{color:#c0392b}h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #eee}"""


def _html_table(head: list[str], rows: list[list[Any]], mono_cols: tuple[int, ...] = ()) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td{' class=mono' if i in mono_cols else ''}>{html.escape(str(c))}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def render_html(result: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    s = sections(result)
    cls = "ok" if result["passed"] else "bad"
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(s['title'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(s['title'])}</h1><p class={cls}><b>{html.escape(s['verdict'])}</b></p>",
             _html_table(["", ""], s["facts"]), "<h2>Gates</h2>", _html_table(["gate", "figure", "bound", "result"], s["gates"]),
             "<h2>Scores</h2>", _html_table(["figure", "this model (raw)", "grounded", "base model", "Δ (raw)"], s["scores"]),
             _html_table(["count", "value"], [[c.replace("`", ""), v] for c, v in s["counts"]]),
             "<h2>Per LambdaFunction</h2>", _html_table(["function", "examples", "function right", "parameters right"],
                                                         [[r[0].strip("`"), *r[1:]] for r in s["per_function"]], (0,)),
             _html_table(*_confusion_rows(s["confusion"]))]
    if s["adversarial"]:
        parts += ["<h2>Adversarial suite</h2>", _html_table(["", ""], s["adversarial"]["summary"]),
                  _html_table(["category", "cases", "fooled", "unsafe after guard", "correct"], s["adversarial"]["by_category"])]
    if pngs:
        parts.append("<h2>Figures</h2>")
        parts += [f'<img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(b).decode()}">' for n, b in pngs.items()]
    if s["worst"]:
        parts += ["<h2>Worst mistakes</h2>", _html_table(["#", "alert", "expected", "answer", "why"], s["worst"], (1, 2, 3))]
    parts += ["<h2>Definitions</h2><p>", html.escape(DEFINITIONS).replace("**", ""), "</p></body></html>\n"]
    return "".join(parts)


def figures(result: Mapping[str, Any]) -> dict[str, bytes]:
    """The PNGs the report shows, by file name (only those with data to draw)."""
    from sre_llm.evaluate import plots

    scores = result["scores"]
    lat = scores.get("latency") or {}
    preds = result["predictions"]
    out = {"confusion.png": plots.confusion_png(result["confusion"])}
    probe = [p["latency_ms"] for p in preds if p.get("latency_ms") is not None]
    amortised = [p["batch_ms"] / p["batch_size"] for p in preds if p.get("batch_ms") is not None]
    png = plots.latency_png(probe, lat.get("p50_ms"), lat.get("p95_ms"), (result.get("gate_config") or {}).get("p95_latency_ms_max"), amortised)
    if png:
        out["latency.png"] = png
    png = plots.loss_png(result.get("loss_curves") or {})
    if png:
        out["loss.png"] = png
    if result.get("baseline"):
        out["baseline.png"] = plots.baseline_png(scores, result["baseline"]["scores"], DELTA_KEYS)
    return out


def write_report(result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the PNGs, ``report.md`` and ``report.html`` into ``out_dir`` (atomically each)."""
    from sre_llm.fsutil import write_atomic

    out = Path(out_dir)
    pngs = figures(result)
    written = []
    for name, data in pngs.items():
        write_atomic(out / name, data)
        written.append(out / name)
    write_atomic(out / "report.md", markdown(result, {n.removesuffix(".png"): n for n in pngs}))
    write_atomic(out / "report.html", render_html(result, pngs))
    return [*written, out / "report.md", out / "report.html"]
