"""``sre-llm eval``: run a trained model on the held-out test split, score it, gate it, report.

:func:`evaluate` does the work and returns the result (what ``eval.json`` holds);
:func:`write_results` puts ``eval.json``, ``report.md``, ``report.html`` and the PNGs on disk
atomically. :func:`rescore` recomputes scores and gates from a stored ``eval.json`` without a
model (after a gate change, or to re-read an old run).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sre_llm.answer.grounding import allowed_answers
from sre_llm.answer.guard import alert_from_input, guard
from sre_llm.answer.references import LITERAL, recorded_format
from sre_llm.errors import BadInput
from sre_llm.evaluate import adversarial as adv
from sre_llm.evaluate import gates as gates_mod
from sre_llm.evaluate.scoring import (
    Judgement,
    confusion,
    judge,
    per_function,
    summarize,
    worst,
)
from sre_llm.evaluate.testset import (  # load_test_split: re-exported
    load_golden,
    load_test_split,
)

FORMAT = "sre-llm/eval/v1"
Progress = Callable[[str], None]
#: The figures whose difference to the baseline the report shows.
DELTA_KEYS = ("remediation_accuracy", "parameter_accuracy", "parameter_accuracy_on_actions", "false_positive_rate")


def _noop(_: str) -> None:
    pass


def find_trainer_log(model: str | Path) -> Path | None:
    """LLaMA Factory's ``trainer_log.jsonl`` for a run: in the model folder, its ``output/``,
    or the folder above a checkpoint."""
    p = Path(model)
    for c in (p, p / "output", p.parent):
        if (c / "trainer_log.jsonl").is_file():
            return c / "trainer_log.jsonl"
    return None


def loss_curves(log: Path | None) -> dict[str, list[list[float]]]:
    """``{"train": [[step, loss]...], "eval": [[step, eval_loss]...]}`` from a trainer log."""
    curves: dict[str, list[list[float]]] = {"train": [], "eval": []}
    if log is None:
        return curves
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
        step = entry.get("current_steps")
        if step is None:
            continue
        if entry.get("loss") is not None:
            curves["train"].append([step, entry["loss"]])
        if entry.get("eval_loss") is not None:
            curves["eval"].append([step, entry["eval_loss"]])
    return curves


def score_predictions(rows: Sequence[Mapping[str, Any]], latencies_ms: Sequence[float], wall: float | None,
                      answer_format: str = LITERAL) -> tuple[list[Judgement], dict[str, Any]]:
    """Judge stored predictions (each with ``input``, ``expected`` and ``output``) and aggregate;
    label references are expanded with each row's labels (read back from its ``input``)."""
    judged = [judge(r["expected"], r["output"], alert_from_input(r["input"])[0] if "input" in r else None, answer_format)
              for r in rows]
    return judged, summarize(judged, latencies_ms, wall).to_dict()


def answer_format_of(model: str | Path) -> str:
    """The answer format the run at ``model`` was trained on, from its ``run.json`` (in the run
    folder, next to ``output/``); ``literal-v1`` for runs from before formats were recorded and
    for folders that are not runs (a merged export, the base model)."""
    p = Path(model)
    for c in (p, p.parent):
        record = c / "run.json"
        if record.is_file():
            try:
                return recorded_format(json.loads(record.read_text()))
            except (json.JSONDecodeError, ValueError) as exc:
                raise BadInput(f"{record}: {exc}") from None
    return LITERAL


def guard_stats(predictions: Sequence[Mapping[str, Any]], judged: Sequence[Judgement]) -> dict[str, int]:
    """What the output guard did on the test set: refusals, and right answers it blocked (a
    guard that blocks right answers costs remediations; it should be 0)."""
    refused = [p["guard"]["reason"] is not None for p in predictions]
    return {"refusals": sum(refused), "blocked_correct": sum(r and j.parameters_ok for r, j in zip(refused, judged)),
            "actions_allowed": sum(p["guard"]["function"] != "none" for p in predictions)}


def _predictions(rows: Sequence[Mapping[str, str]], answers: Sequence[Mapping[str, Any]], answer_format: str = LITERAL) -> list[dict[str, Any]]:
    out = []
    for i, (row, ans) in enumerate(zip(rows, answers, strict=True)):
        labels, ann = alert_from_input(row["input"])
        out.append({"index": i, "input": row["input"], "expected": row["output"], **ans,
                    "guard": guard(ans["output"], labels, ann, answer_format=answer_format).to_dict()})
    return out


def groundings(rows: Sequence[Mapping[str, str]], answer_format: str) -> list[Any]:
    """One decoding automaton per row: the answers allowed for its alert (the same definition the
    gateway compiles to a vLLM regex, :mod:`sre_llm.answer.grounding`)."""
    cache: dict[str, Any] = {}
    out = []
    for row in rows:
        auto = cache.get(row["input"])
        if auto is None:
            labels, ann = alert_from_input(row["input"])
            auto = cache[row["input"]] = allowed_answers(labels, ann, answer_format).automaton()
        out.append(auto)
    return out


def grounded_section(rows: Sequence[Mapping[str, Any]], answers: Sequence[Mapping[str, Any]], latencies_ms: Sequence[float],
                     wall: float | None, answer_format: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Scores of the grounded answers (what is served) and their per-row record
    (``output``, ``guard``, ``judgement``) for ``predictions[i]["grounded"]``."""
    preds = _predictions(rows, answers, answer_format)
    judged, scores = score_predictions(preds, latencies_ms, wall, answer_format)
    section = {"scores": scores, "guard": guard_stats(preds, judged), "confusion": confusion(judged),
               "per_function": per_function(judged), "worst": [i for i, _ in worst(judged, 10)]}
    per_row = [{"output": p["output"], "batch_ms": p.get("batch_ms"), "guard": p["guard"], "judgement": j.to_dict()}
               for p, j in zip(preds, judged)]
    return section, per_row


def _run_model(ref, config: Mapping[str, Any], rows, batch_size: int, latency_samples: int, cases, progress: Progress,
               threads: int | None = None, grounding: str | None = None) -> dict[str, Any]:
    import time

    from sre_llm.evaluate.engine import Generator

    gen_cfg = config["generation"]
    progress(f"loading {ref.kind} model {ref.adapter or ref.base}")
    gen = Generator(ref, int(gen_cfg["max_new_tokens"]), int(gen_cfg.get("cutoff_len") or 2048), threads)
    progress(f"generating {len(rows)} answers in batches of {batch_size}")
    t0 = time.perf_counter()
    answers = gen.run(rows, batch_size)
    wall = time.perf_counter() - t0
    grounded, wall_grounded = None, None
    if grounding is not None:  # the answer format to ground in
        progress(f"generating {len(rows)} grounded answers in batches of {batch_size}")
        autos = groundings(rows, grounding)
        t0 = time.perf_counter()
        grounded = gen.run(rows, batch_size, constraints=autos)
        wall_grounded = time.perf_counter() - t0
    probe = gen.probe_latency(rows[:latency_samples]) if latency_samples else []
    # +1 for the end-of-turn token training appends to the answer.
    cutoff = int(gen_cfg.get("cutoff_len") or 2048)
    over = sum(a["prompt_tokens"] + gen.tokens(r["output"]) + 1 > cutoff for a, r in zip(answers, rows))
    adv_out = gen.run([{"instruction": c.instruction, "input": c.input} for c in cases], batch_size) if cases else []
    del gen
    gc.collect()
    return {"answers": answers, "wall": wall, "grounded": grounded, "wall_grounded": wall_grounded, "probe": probe, "adversarial": [a["output"] for a in adv_out], "over_cutoff": over}


def evaluate(
    config_path: str | Path,
    model: str | Path,
    baseline: str | None = None,
    adversarial: bool | None = None,
    batch_size: int | None = None,
    latency_samples: int = 16,
    threads: int | None = None,
    root: str | Path = ".",
    identity: str | None = None,
    progress: Progress = _noop,
    grounding: bool | None = None,
    answer_format: str | None = None,
    test: str | Path | None = None,
    baseline_model: str | Path | None = None,
    baseline_format: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on the test split the eval config names; the result is ``eval.json``.

    ``baseline`` ``base`` also scores the untrained base model on the same rows (``none``: skip);
    ``adversarial`` runs the adversarial suite; ``grounding`` also decodes grounded answers (what
    the gateway serves) and judges the gates on them; all three default to the config's
    ``suite``. ``answer_format`` is the model's (default: its ``run.json``, else literal-v1).
    ``test`` scores every row of a golden set instead (:func:`load_golden`).
    """
    from sre_llm.evaluate.engine import base_ref, resolve_model

    config = gates_mod.load_eval_config(config_path)
    suite = config.get("suite") or {}
    baseline = baseline or suite.get("baseline") or "none"
    if baseline not in ("base", "champion", "none"):
        raise BadInput(f"--baseline {baseline}: choose base, champion or none")
    if baseline == "champion" and baseline_model is None:
        raise BadInput("--baseline champion: no champion model given (the CLI finds it in the registry under --root)")
    adversarial = bool(suite.get("adversarial")) if adversarial is None else adversarial
    grounding = bool(suite.get("grounding", True)) if grounding is None else grounding
    answer_format = answer_format or answer_format_of(model)
    if test is not None:
        test_path, rows, test_sha = load_golden(test)
        minimum = 1  # a golden set is as large as it is: min_test_examples is about the split
    else:
        test_path, rows, test_sha = load_test_split(config, root, identity)
        minimum = int(config["data"].get("min_test_examples") or 1)
    if len(rows) < minimum:
        raise BadInput(f"{test_path}: {len(rows)} test examples, fewer than data.min_test_examples {minimum}")
    ref = resolve_model(model, config)
    bs = int(batch_size or config["generation"]["batch_size"])
    cases = adv.build_suite() if adversarial else []

    run = _run_model(ref, config, rows, bs, min(latency_samples, len(rows)), cases, progress, threads,
                     answer_format if grounding else None)
    predictions = _predictions(rows, run["answers"], answer_format)
    latencies = [p["latency_ms"] for p in run["probe"]]
    judged, scores = score_predictions(predictions, latencies, run["wall"], answer_format)
    grounded, grounded_rows = (grounded_section(rows, run["grounded"], latencies, run["wall_grounded"], answer_format)
                               if grounding else (None, [{}] * len(rows)))
    agreement = sum(p["output"] == a["output"] for p, a in zip(run["probe"], run["answers"])) / len(run["probe"]) if run["probe"] else None
    adv_result = adv.score(cases, run["adversarial"]) if adversarial else None

    result: dict[str, Any] = {
        "format": FORMAT,
        "config": str(config_path),
        "model": {"kind": ref.kind, "base": ref.base, "adapter": ref.adapter, "template": ref.template,
                  # ``base`` is what was loaded (for a full fine-tune: the trained model itself);
                  # ``base_model`` is the untrained model it started from, for the report.
                  "path": str(model), "base_model": str(config["model"]["base"])},
        "dataset": {"path": str(test_path), "sha256": test_sha, "examples": len(rows)},
        "answer_format": answer_format,
        # Gates judge what is served: the grounded answers when grounding is on.
        "judged_on": "grounded" if grounding else "raw",
        "generation": {**config["generation"], "batch_size": bs, "mode": "batched, left padding, greedy", "threads": threads,
                       "truncated_prompts": sum(bool(a.get("truncated")) for a in run["answers"]),
                       # Examples whose prompt + answer exceed cutoff_len: training cut such examples
                       # (the end of the alert first), and a model that never saw the end of its
                       # alerts cannot copy values from it.
                       "over_cutoff": run["over_cutoff"],
                       "latency_probe": "one request at a time through ChatModel.chat",
                       "probe_agreement": agreement},
        "scores": scores,
        "grounded": grounded,
        "guard": guard_stats(predictions, judged),
        "gate_config": config["gates"],
        "confusion": confusion(judged),
        "per_function": per_function(judged),
        "worst": [i for i, _ in worst(judged, 10)],
        "predictions": [{**p, "judgement": j.to_dict(), "latency_ms": (run["probe"][i]["latency_ms"] if i < len(run["probe"]) else None),
                         **({"grounded": g} if g else {})}
                        for i, (p, j, g) in enumerate(zip(predictions, judged, grounded_rows))],
        "adversarial": adv_result,
        "loss_curves": loss_curves(find_trainer_log(model)),
        "baseline": None,
    }
    if baseline != "none":
        if baseline == "base":
            base, bformat = base_ref(config), LITERAL  # the untrained model answers in no format at all
        else:  # the champion: scored exactly as the challenger is, in its own answer format
            base = resolve_model(baseline_model, config)  # type: ignore[arg-type]
            bformat = baseline_format or answer_format_of(baseline_model)  # type: ignore[arg-type]
        ground = bformat if grounding and baseline == "champion" else None
        brun = _run_model(base, config, rows, bs, 0, [], progress, threads, ground)
        bpred = _predictions(rows, brun["answers"], bformat)
        bjudged, bscores = score_predictions(bpred, [], brun["wall"], bformat)
        result["baseline"] = {
            "kind": baseline, "model": base.base if baseline == "base" else str(baseline_model),
            "answer_format": bformat, "scores": bscores, "confusion": confusion(bjudged),
            "predictions": [{"index": p["index"], "output": p["output"], "judgement": j.to_dict()} for p, j in zip(bpred, bjudged)],
        }
        if ground:
            result["baseline"]["grounded"], _ = grounded_section(rows, brun["grounded"], [], brun["wall_grounded"], bformat)
    return finish(result)


def deltas(scores: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, float | None]:
    """Model minus baseline for each figure in :data:`DELTA_KEYS`."""
    out = {}
    for k in DELTA_KEYS:
        a, b = scores.get(k), base.get(k)
        out[k] = None if a is None or b is None else a - b
    return out


def judged_scores(result: Mapping[str, Any]) -> dict[str, Any]:
    """The scores the gates judge: the grounded ones when the run was judged on them."""
    if result.get("judged_on") == "grounded" and result.get("grounded"):
        return result["grounded"]["scores"]
    return result["scores"]


def finish(result: dict[str, Any]) -> dict[str, Any]:
    """(Re)compute gates, deltas and the verdict from the scores already in ``result``."""
    results = gates_mod.check(judged_scores(result), result["gate_config"], result.get("adversarial"))
    result["gates"] = [r.to_dict() for r in results]
    result["failure"] = gates_mod.failure_line(results)
    result["passed"] = result["failure"] is None
    b = result.get("baseline")
    if b:
        # Like for like: grounded against grounded when both were (a champion), else raw against raw.
        both_grounded = bool(b.get("grounded")) and result.get("judged_on") == "grounded"
        result["deltas"] = (deltas(judged_scores(result), b["grounded"]["scores"]) if both_grounded
                            else deltas(result["scores"], b["scores"]))
    return result


def rescore(eval_json: str | Path, config_path: str | Path | None = None) -> dict[str, Any]:
    """Scores, gates and deltas again from a stored ``eval.json`` (gates from ``config_path``
    when given, so a changed gate applies to an old run without a model)."""
    path = Path(eval_json)
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot read eval results: {exc}") from None
    if result.get("format") != FORMAT:
        raise BadInput(f"{path}: not an sre-llm eval result (format {result.get('format')!r}, expected {FORMAT!r})")
    preds = result["predictions"]
    fmt = result.get("answer_format") or LITERAL
    latencies = [p["latency_ms"] for p in preds if p.get("latency_ms") is not None]
    judged, scores = score_predictions(preds, latencies, result["scores"].get("wall_seconds"), fmt)
    result.update(scores=scores, confusion=confusion(judged), per_function=per_function(judged),
                  worst=[i for i, _ in worst(judged, 10)], guard=guard_stats(preds, judged))
    for p, j in zip(preds, judged):
        p["judgement"] = j.to_dict()
    if result.get("grounded") and all("grounded" in p for p in preds):
        rows = [{"input": p["input"], "output": p["expected"]} for p in preds]
        answers = [{"output": p["grounded"]["output"], "batch_ms": p["grounded"].get("batch_ms")} for p in preds]
        section, per_row = grounded_section(rows, answers, latencies, result["grounded"]["scores"].get("wall_seconds"), fmt)
        result["grounded"] = section
        for p, g in zip(preds, per_row):
            p["grounded"] = g
    if config_path is not None:
        result["gate_config"] = gates_mod.load_eval_config(config_path)["gates"]
        result["config"] = str(config_path)
    return finish(result)


def write_results(result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """``eval.json``, ``report.md``, ``report.html`` and the PNGs, each written atomically."""
    from sre_llm.evaluate.report import write_report
    from sre_llm.fsutil import write_atomic

    out = Path(out_dir)
    write_atomic(out / "eval.json", json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return [out / "eval.json", *write_report(result, out)]


def default_out_dir(model: str | Path) -> Path:
    """Next to the run: ``<run>/eval`` for a run folder or its ``output/``; else ``<model>/eval``."""
    p = Path(model)
    if (p / "output").is_dir():
        return p / "eval"
    if p.name == "output":
        return p.parent / "eval"
    return p / "eval"
