"""``sre-llm eval``: run a trained model on the held-out test split, score it, gate it, report.

:func:`evaluate` does the work and returns the result (what ``eval.json`` holds);
:func:`write_results` puts ``eval.json``, ``report.md``, ``report.html`` and the PNGs on disk
atomically. :func:`rescore` recomputes scores and gates from a stored ``eval.json`` without a
model (after a gate change, or to re-read an old run).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput
from sre_llm.evaluate import adversarial as adv
from sre_llm.evaluate import gates as gates_mod
from sre_llm.evaluate.guard import alert_from_input, guard
from sre_llm.evaluate.scoring import (
    Judgement,
    confusion,
    judge,
    per_function,
    summarize,
    worst,
)

FORMAT = "sre-llm/eval/v1"
Progress = Callable[[str], None]
#: The figures whose difference to the baseline the report shows.
DELTA_KEYS = ("remediation_accuracy", "parameter_accuracy", "parameter_accuracy_on_actions", "false_positive_rate")


def _noop(_: str) -> None:
    pass


def load_test_split(config: Mapping[str, Any], root: str | Path = ".", identity: str | None = None) -> tuple[Path, list[dict[str, str]], str]:
    """The test split's path, alpaca rows and plaintext sha256 (as in the dataset card), found
    through the dataset's ``dataset_info.json``.

    An encrypted split (``test.jsonl.age``) is decrypted in memory with ``identity`` (the spec's
    ``dataset.encryption.identity``); plaintext never touches the disk.
    """
    data = config["data"]
    folder = Path(root) / str(data["dataset_dir"])
    info_path = folder / "dataset_info.json"
    name = data["test_dataset"]
    file_name = "test.jsonl"
    if info_path.is_file():
        entry = json.loads(info_path.read_text()).get(name)
        if entry is None:
            raise BadInput(f"{info_path}: no dataset named {name!r} (the eval config's data.test_dataset)")
        file_name = entry["file_name"]
    path = folder / file_name
    if path.is_file():
        text = path.read_text()
    elif Path(f"{path}.age").is_file():
        if not identity:
            raise BadInput(f"{path}.age: the test split is encrypted; evaluate through the spec (it names the identity) or decrypt it first")
        from sre_llm.dataset.crypto import decrypt

        path = Path(f"{path}.age")
        text = decrypt(path.read_bytes(), identity, root, what=str(path)).decode()
    else:
        raise BadInput(f"{path}: test split not found; run `sre-llm dataset build SPEC` first")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("output"), str) or not isinstance(row.get("input"), str):
            raise BadInput(f"{path}:{n}: expected an alpaca record with string 'input' and 'output'")
        rows.append(row)
    return path, rows, hashlib.sha256(text.encode()).hexdigest()


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


def score_predictions(rows: Sequence[Mapping[str, Any]], latencies_ms: Sequence[float], wall: float | None) -> tuple[list[Judgement], dict[str, Any]]:
    """Judge stored predictions (each with ``expected`` and ``output``) and aggregate."""
    judged = [judge(r["expected"], r["output"]) for r in rows]
    return judged, summarize(judged, latencies_ms, wall).to_dict()


def guard_stats(predictions: Sequence[Mapping[str, Any]], judged: Sequence[Judgement]) -> dict[str, int]:
    """What the output guard did on the test set: refusals, and right answers it blocked (a
    guard that blocks right answers costs remediations; it should be 0)."""
    refused = [p["guard"]["reason"] is not None for p in predictions]
    return {"refusals": sum(refused), "blocked_correct": sum(r and j.parameters_ok for r, j in zip(refused, judged)),
            "actions_allowed": sum(p["guard"]["function"] != "none" for p in predictions)}


def _predictions(rows: Sequence[Mapping[str, str]], answers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, (row, ans) in enumerate(zip(rows, answers, strict=True)):
        labels, ann = alert_from_input(row["input"])
        out.append({"index": i, "input": row["input"], "expected": row["output"], **ans,
                    "guard": guard(ans["output"], labels, ann).to_dict()})
    return out


def _run_model(ref, config: Mapping[str, Any], rows, batch_size: int, latency_samples: int, cases, progress: Progress,
               threads: int | None = None) -> dict[str, Any]:
    import time

    from sre_llm.evaluate.engine import Generator

    gen_cfg = config["generation"]
    progress(f"loading {ref.kind} model {ref.adapter or ref.base}")
    gen = Generator(ref, int(gen_cfg["max_new_tokens"]), int(gen_cfg.get("cutoff_len") or 2048), threads)
    progress(f"generating {len(rows)} answers in batches of {batch_size}")
    t0 = time.perf_counter()
    answers = gen.run(rows, batch_size)
    wall = time.perf_counter() - t0
    probe = gen.probe_latency(rows[:latency_samples]) if latency_samples else []
    # +1 for the end-of-turn token training appends to the answer.
    cutoff = int(gen_cfg.get("cutoff_len") or 2048)
    over = sum(a["prompt_tokens"] + gen.tokens(r["output"]) + 1 > cutoff for a, r in zip(answers, rows))
    adv_out = gen.run([{"instruction": c.instruction, "input": c.input} for c in cases], batch_size) if cases else []
    del gen
    gc.collect()
    return {"answers": answers, "wall": wall, "probe": probe, "adversarial": [a["output"] for a in adv_out], "over_cutoff": over}


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
) -> dict[str, Any]:
    """Evaluate ``model`` on the test split the eval config names; the result is ``eval.json``.

    ``baseline`` ``base`` also scores the untrained base model on the same rows (``none``: skip);
    ``adversarial`` runs the adversarial suite; both default to the config's ``suite``.
    """
    from sre_llm.evaluate.engine import base_ref, resolve_model

    config = gates_mod.load_eval_config(config_path)
    suite = config.get("suite") or {}
    baseline = baseline or suite.get("baseline") or "none"
    if baseline == "champion":
        raise BadInput("--baseline champion: no champion lookup in the evaluator yet; use base or none")
    if baseline not in ("base", "none"):
        raise BadInput(f"--baseline {baseline}: choose base or none")
    adversarial = bool(suite.get("adversarial")) if adversarial is None else adversarial
    test_path, rows, test_sha = load_test_split(config, root, identity)
    minimum = int(config["data"].get("min_test_examples") or 1)
    if len(rows) < minimum:
        raise BadInput(f"{test_path}: {len(rows)} test examples, fewer than data.min_test_examples {minimum}")
    ref = resolve_model(model, config)
    bs = int(batch_size or config["generation"]["batch_size"])
    cases = adv.build_suite() if adversarial else []

    run = _run_model(ref, config, rows, bs, min(latency_samples, len(rows)), cases, progress, threads)
    predictions = _predictions(rows, run["answers"])
    latencies = [p["latency_ms"] for p in run["probe"]]
    judged, scores = score_predictions(predictions, latencies, run["wall"])
    agreement = sum(p["output"] == a["output"] for p, a in zip(run["probe"], run["answers"])) / len(run["probe"]) if run["probe"] else None
    adv_result = adv.score(cases, run["adversarial"]) if adversarial else None

    result: dict[str, Any] = {
        "format": FORMAT,
        "config": str(config_path),
        "model": {"kind": ref.kind, "base": ref.base, "adapter": ref.adapter, "template": ref.template,
                  "path": str(model)},
        "dataset": {"path": str(test_path), "sha256": test_sha, "examples": len(rows)},
        "generation": {**config["generation"], "batch_size": bs, "mode": "batched, left padding, greedy", "threads": threads,
                       "truncated_prompts": sum(bool(a.get("truncated")) for a in run["answers"]),
                       # Examples whose prompt + answer exceed cutoff_len: training cut such examples
                       # (the end of the alert first), and a model that never saw the end of its
                       # alerts cannot copy values from it.
                       "over_cutoff": run["over_cutoff"],
                       "latency_probe": "one request at a time through ChatModel.chat",
                       "probe_agreement": agreement},
        "scores": scores,
        "guard": guard_stats(predictions, judged),
        "gate_config": config["gates"],
        "confusion": confusion(judged),
        "per_function": per_function(judged),
        "worst": [i for i, _ in worst(judged, 10)],
        "predictions": [{**p, "judgement": j.to_dict(), "latency_ms": (run["probe"][i]["latency_ms"] if i < len(run["probe"]) else None)}
                        for i, (p, j) in enumerate(zip(predictions, judged))],
        "adversarial": adv_result,
        "loss_curves": loss_curves(find_trainer_log(model)),
        "baseline": None,
    }
    if baseline == "base":
        base = base_ref(config)
        brun = _run_model(base, config, rows, bs, 0, [], progress, threads)
        bpred = _predictions(rows, brun["answers"])
        bjudged, bscores = score_predictions(bpred, [], brun["wall"])
        result["baseline"] = {
            "kind": "base", "model": base.base, "scores": bscores, "confusion": confusion(bjudged),
            "predictions": [{"index": p["index"], "output": p["output"], "judgement": j.to_dict()} for p, j in zip(bpred, bjudged)],
        }
    return finish(result)


def deltas(scores: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, float | None]:
    """Model minus baseline for each figure in :data:`DELTA_KEYS`."""
    out = {}
    for k in DELTA_KEYS:
        a, b = scores.get(k), base.get(k)
        out[k] = None if a is None or b is None else a - b
    return out


def finish(result: dict[str, Any]) -> dict[str, Any]:
    """(Re)compute gates, deltas and the verdict from the scores already in ``result``."""
    results = gates_mod.check(result["scores"], result["gate_config"], result.get("adversarial"))
    result["gates"] = [r.to_dict() for r in results]
    result["failure"] = gates_mod.failure_line(results)
    result["passed"] = result["failure"] is None
    if result.get("baseline"):
        result["deltas"] = deltas(result["scores"], result["baseline"]["scores"])
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
    latencies = [p["latency_ms"] for p in preds if p.get("latency_ms") is not None]
    judged, scores = score_predictions(preds, latencies, result["scores"].get("wall_seconds"))
    result.update(scores=scores, confusion=confusion(judged), per_function=per_function(judged),
                  worst=[i for i, _ in worst(judged, 10)], guard=guard_stats(preds, judged))
    for p, j in zip(preds, judged):
        p["judgement"] = j.to_dict()
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
