"""Measured figures, stamped, and the README blocks that quote them.

`make demo` and `make bench` write what they measured to ``docs/figures/demo.json`` and
``docs/figures/bench.json``, each stamped with the commit, the date and the machine. The README
quotes those files between markers; ``python -m sre_llm.figures --readme README.md`` rewrites the
blocks and ``--check`` exits 1 when they differ (a test runs it), so a figure in the README is
always one that a script measured, with where and when.

    python -m sre_llm.figures demo --run RUN --seconds N --promoted yes --rollout "ab-test 50 %"
    python -m sre_llm.figures bench DIR        # DIR holds one <benchmark>.json per bench/*.py
    python -m sre_llm.figures --readme README.md [--check]
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FIGURES_DIR = Path("docs") / "figures"
DEMO_BEGIN = "<!-- figures:demo:begin (generated from docs/figures/demo.json by `make demo`; do not edit) -->"
DEMO_END = "<!-- figures:demo:end -->"
BENCH_BEGIN = "<!-- figures:bench:begin (generated from docs/figures/bench.json by `make bench`; do not edit) -->"
BENCH_END = "<!-- figures:bench:end -->"


def stamp(root: str | Path = ".") -> dict[str, Any]:
    """Where and when: the commit (``+dirty`` with uncommitted changes), UTC date, cores, CPU."""
    from sre_llm import gitops

    commit = "unknown"
    if gitops.is_repo(root):
        commit = (gitops.head(root) or "unknown")[:12]
        if gitops.is_dirty(root):
            commit += "+dirty"
    return {"commit": commit, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def _write(path: Path, data: dict[str, Any]) -> Path:
    from sre_llm.fsutil import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


# ── the demo ────────────────────────────────────────────────────────────────────────────────────


def demo_figures(run: str | Path, seconds: float, promoted: str, rollout: str | None,
                 setup_seconds: float | None = None, ood: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """What the README says about the demo, from the run's own records (eval.json, run.json);
    ``ood`` names the eval.json of each out-of-distribution golden set the run was scored on."""
    run = Path(run)
    result = json.loads((run / "eval" / "eval.json").read_text())
    record = json.loads((run / "run.json").read_text())
    scores, raw = _judged(result)
    figures: dict[str, Any] = {
        "seconds": round(seconds),
        "setup_seconds": None if setup_seconds is None else round(setup_seconds),
        "train_seconds": round(record.get("duration_s") or 0),
        "epochs": (record.get("final") or {}).get("epoch"),
        "test_examples": scores.get("examples"),
        "gates": [_gate(g) for g in result.get("gates", [])],
        "passed": bool(result.get("passed")),
        "promoted": promoted,
        "rollout": rollout,
    }
    if raw:
        figures["raw"] = {k: raw.get(k) for k in _HEADLINE}
    if ood:
        figures["ood"] = {name: _ood_scores(path) for name, path in sorted(ood.items())}
    return figures


_HEADLINE = ("remediation_accuracy", "parameter_accuracy", "false_positive_rate")


def _judged(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the scores the gates judged, the raw scores beside them when those were grounded)."""
    from sre_llm.evaluate.harness import judged_scores

    judged = judged_scores(result)
    return judged, (result["scores"] if judged is not result["scores"] else None)


def _ood_scores(eval_json: str | Path) -> dict[str, Any]:
    """An out-of-distribution evaluation's headline: examples, judged scores, raw beside them."""
    scores, raw = _judged(json.loads(Path(eval_json).read_text()))
    out: dict[str, Any] = {"examples": scores.get("examples"), **{k: scores.get(k) for k in _HEADLINE}}
    if raw:
        out |= {f"raw_{k}": raw.get(k) for k in _HEADLINE}
    return out


def _gate(g: dict[str, Any]) -> str:
    from sre_llm.evaluate.gates import GateResult

    return GateResult(**g).describe()


def demo_block(data: dict[str, Any]) -> str:
    s = data["stamp"]
    lines = [f"Measured by `make demo` at commit `{s['commit']}` on {s['date']} ({s['cores']} cores, "
             f"{s['machine']}, Python {s['python']}): **{_minutes(data['seconds'])}** for the demo"
             + (f" after a {_minutes(data['setup_seconds'])} `make setup`" if data.get("setup_seconds") else "")
             + f", of which training {data['train_seconds']} s; {data['test_examples']:,} held-out examples.", "",
             "```"]
    lines += [f"  {g}" for g in data["gates"]]
    raw = data.get("raw")
    if raw:
        lines.append("  raw (unconstrained) answers: " + _scores(raw))
    for name, scores in (data.get("ood") or {}).items():
        lines.append(f"  out-of-distribution split {name} ({scores.get('examples') or 0:,} examples): "
                     + _scores(scores) + (f"; raw {_scores(scores, 'raw_')}" if f"raw_{_HEADLINE[0]}" in scores else ""))
    lines.append(f"promoted: {data['promoted']}")
    if data.get("rollout"):
        lines.append(f"rollout: {data['rollout']}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def _scores(scores: dict[str, Any], prefix: str = "") -> str:
    return ", ".join(f"{k} {scores[prefix + k]:.3f}" for k in _HEADLINE if isinstance(scores.get(prefix + k), (int, float)))


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


# ── benchmarks ──────────────────────────────────────────────────────────────────────────────────

def _get(d: Any, *path: str) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _x(v: Any) -> str:
    return f"{v:.3g}×" if isinstance(v, (int, float)) else "?"


def _range(v: Any) -> str:
    if isinstance(v, dict) and "median" in v:
        extra = f" (min {v['min']:.3g}, max {v['max']:.3g})" if "max" in v else ""
        return f"{v['median']:.3g}×{extra}"
    return _x(v)


def _gateway(r: dict[str, Any]) -> str:
    parts = []
    for level in r.get("results") or []:
        rounds = [x.get("throughput_ratio") for x in level.get("rounds") or []]
        spread = f" (rounds {min(rounds):.2f}–{max(rounds):.2f})" if len(rounds) > 1 else ""
        paired = level.get("added_ms_paired_median_median")
        parts.append(f"concurrency {level.get('concurrency')}: {level.get('added_p50_ms_median', 0):+.1f} ms P50"
                     + (f" ({paired:+.1f} ms per alert)" if paired is not None else "")
                     + f", {_x(level.get('throughput_ratio_median'))}{spread}")
    isolated = "; ".join(f"{x.get('concurrency')}: {x.get('added_p50_ms', 0):+.1f} ms, {_x(x.get('throughput_ratio'))}"
                         for x in r.get("isolated") or [])
    where = f", vLLM on CPUs {r['vllm_cpus']}" if r.get("vllm_cpus") not in (None, "all") else ""
    p = r.get("agent_sre_prompt") or {}
    prompt = (f"; agent-sre's own prompt to vLLM unconstrained: {p.get('agent_sre_tokens_median', 0):.0f} tokens vs "
              f"{p.get('canonical_tokens_median', 0):.0f} canonical, prefill {p.get('agent_sre_prefill_ms_median')} vs "
              f"{p.get('canonical_prefill_ms_median')} ms, a whole answer {p.get('agent_sre_unconstrained_ms_median')} ms"
              if p else "")
    return ("; ".join(parts) + (f" ({r.get('alerts')} alerts{where})" if parts else "see JSON")
            + (f"; the gateway alone (an upstream that uses no CPU) at concurrency {isolated}" if isolated else "") + prompt)


#: Each benchmark's headline: (what it compares, target, measured), from its own JSON.
BENCHMARKS: dict[str, Any] = {
    "render_startup": lambda r: ("cold `sre-llm render` of the shipped specs vs importing its libraries",
                                 f"≤ {_x(r.get('target_ratio'))}",
                                 f"{_x(r.get('ratio_median'))} ({_get(r, 'render_s', 'median')} s vs "
                                 f"{_get(r, 'import_baseline_s', 'median')} s)"),
    "dataset_pipeline": lambda r: (f"{r.get('alerts', 0):,} alerts label → redact → dedupe → split → write",
                                   f"≤ {r.get('target_s')} s, ≤ {r.get('target_rss_mb')} MB",
                                   f"{r.get('pipeline_s')} s, {r.get('pipeline_peak_rss_mb')} MB peak RSS "
                                   f"({_range(r.get('ratio'))} a bare json loop)"),
    "sign_verify": lambda r: ("sign + verify a model vs one `sha256sum` pass", f"≤ {_x(r.get('target'))}", _x(r.get("ratio"))),
    "eval_batching": lambda r: ("batched eval vs one answer at a time; grounded vs unconstrained batched",
                                f"≥ {_x(r.get('target_speedup'))}; ≥ {_x(_get(r, 'grounded', 'target_ratio'))}",
                                f"{_x(r.get('speedup'))}; {_x(_get(r, 'grounded', 'examples_ratio'))} "
                                f"({r.get('examples')} alerts, {r.get('model')})"),
    "train_overhead": lambda r: ("`sre-llm train` vs `llamafactory-cli train`, same config", f"≤ {_x(r.get('target'))}",
                                 _range(r.get("ratio"))),
    "oci_roundtrip": lambda r: (f"push + pull + verify of {r.get('size_mb')} MiB through a local OCI registry vs raw "
                                "PUT + GET + sha256sum", f"≤ {_x(r.get('target'))}",
                                f"{_x(r.get('ratio'))} ({r.get('median_ours_s')} s vs {r.get('median_raw_s')} s)"),
    "gateway_overhead": lambda r: ("agent-sre's request through the gateway vs vLLM direct, same prompt and constraint",
                                   "≤ +5 ms P50, ≥ 0.95× throughput", _gateway(r)),
    "receiver_load": lambda r: ("`collect serve`: valid webhooks/s (fsync'd) at 1 / 50 / 500 clients, vs one fsync "
                                "per payload", f"≥ {r.get('target_payloads_per_s_at_50', 1000):,.0f}/s at 50",
                                "; ".join(f"{x.get('clients')}: {x.get('payloads_per_s', 0):,.0f}/s, P99 "
                                          f"{x.get('p99_ms')} ms" for x in r.get("levels") or [])
                                + f" ({_x(r.get('ratio_vs_fsync_per_payload_at_50'))} at 50)"),
}


def bench_block(data: dict[str, Any]) -> str:
    s = data["stamp"]
    rows = [f"Measured by `make bench` at commit `{s['commit']}` on {s['date']} ({s['cores']} cores, {s['machine']}):", "",
            "| benchmark | compares | target | measured |", "|---|---|---|---|"]
    for name, result in sorted(data["results"].items()):
        headline = BENCHMARKS.get(name)
        what, target, measured = headline(result) if headline else (
            "", "" if result.get("target") is None else f"≤ {_x(result['target'])}", _range(result.get("ratio")))
        rows.append(f"| `{name}` | {what} | {target} | {measured} |")
    return "\n".join(rows) + "\n"


def collect_bench(folder: str | Path) -> dict[str, Any]:
    """``<benchmark>.json`` files (each a bench's stdout: its last JSON object, one line or
    indented, after any log lines) → one results mapping."""
    decoder = json.JSONDecoder()
    results = {}
    for path in sorted(Path(folder).glob("*.json")):
        text = path.read_text()
        starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
        for start in reversed(starts):
            try:
                obj, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            results[obj.get("benchmark", path.stem)] = obj
            break
    return results


# ── the README ──────────────────────────────────────────────────────────────────────────────────


def _replace(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        return text
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + body + text[stop:]


def update_readme(readme: str | Path, root: str | Path = ".", check: bool = False) -> bool:
    """Rewrite the figure blocks from docs/figures/*.json; True when the README changed (or would)."""
    from sre_llm.fsutil import write_atomic

    text = Path(readme).read_text(encoding="utf-8")
    new = text
    demo = Path(root) / FIGURES_DIR / "demo.json"
    if demo.is_file():
        new = _replace(new, DEMO_BEGIN, DEMO_END, demo_block(json.loads(demo.read_text())))
    bench = Path(root) / FIGURES_DIR / "bench.json"
    if bench.is_file():
        new = _replace(new, BENCH_BEGIN, BENCH_END, bench_block(json.loads(bench.read_text())))
    if new != text and not check:
        write_atomic(readme, new)
    return new != text


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sre_llm.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", help="Rewrite this README's figure blocks.")
    parser.add_argument("--check", action="store_true", help="With --readme: exit 1 if the blocks are stale.")
    # The same two options after the subcommand too (`… bench DIR --readme README.md`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--readme", default=argparse.SUPPRESS, help="Rewrite this README's figure blocks.")
    common.add_argument("--check", action="store_true", default=argparse.SUPPRESS,
                        help="With --readme: exit 1 if the blocks are stale.")
    sub = parser.add_subparsers(dest="what")
    d = sub.add_parser("demo", help="Record the demo's figures.", parents=[common])
    d.add_argument("--run", required=True)
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--setup-seconds", type=float)
    d.add_argument("--promoted", required=True)
    d.add_argument("--rollout")
    d.add_argument("--ood", action="append", default=[], metavar="NAME=EVAL_JSON",
                   help="An out-of-distribution evaluation of the same run (repeatable).")
    b = sub.add_parser("bench", help="Record the benchmarks' figures.", parents=[common])
    b.add_argument("folder")
    args = parser.parse_args(argv)
    if args.what == "demo":
        ood = dict(item.split("=", 1) for item in args.ood)
        data = {"stamp": stamp(), **demo_figures(args.run, args.seconds, args.promoted, args.rollout, args.setup_seconds, ood)}
        print(f"wrote {_write(FIGURES_DIR / 'demo.json', data)}")
    elif args.what == "bench":
        data = {"stamp": stamp(), "results": collect_bench(args.folder)}
        print(f"wrote {_write(FIGURES_DIR / 'bench.json', data)}")
    if args.readme:
        changed = update_readme(args.readme, check=args.check)
        if args.check and changed:
            print(f"{args.readme}: figures are out of date: run `python -m sre_llm.figures --readme {args.readme}`",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
