"""Scoring with label references, raw and grounded side by side, and golden sets: no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sre_llm.answer import LABELREF, LITERAL, guard, render_input, render_output
from sre_llm.errors import BadInput
from sre_llm.evaluate.harness import (
    FORMAT,
    answer_format_of,
    finish,
    load_golden,
    rescore,
)
from sre_llm.evaluate.scoring import judge

LABELS = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-1", "deployment": "web", "service": "web"}
RESTART = {"name": "web-1", "namespace": "shop", "type": "pod"}
REF = render_output("pod-restart", {"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}", "type": "pod"})


def test_references_are_expanded_on_both_sides_before_comparing():
    literal = render_output("pod-restart", RESTART)
    assert judge(literal, REF, LABELS, LABELREF).parameters_ok  # a golden set in literal values
    assert judge(REF, literal, LABELS, LABELREF).parameters_ok  # a labelref split, a literal answer
    # deployment and service share "web": either reference is the same call.
    a = render_output("pod-restart", {"name": "{{ $labels.service }}", "namespace": "shop", "type": "deployment"})
    b = render_output("pod-restart", {"name": "{{ $labels.deployment }}", "namespace": "shop", "type": "deployment"})
    assert judge(b, a, LABELS, LABELREF).parameters_ok
    # A model trained on literal values does not speak references: its text is compared as it is.
    assert not judge(literal, REF, LABELS, LITERAL).parameters_ok


def test_a_reference_the_alert_lacks_is_wrong_with_a_reason():
    j = judge(REF, REF.replace("$labels.pod", "$labels.statefulset"), LABELS, LABELREF)
    assert (j.function_ok, j.parameters_ok) == (True, False)
    assert j.schema_problems == ("pod-restart: parameter 'name' refers to label 'statefulset', which the alert does not have",)


def _stored(tmp_path: Path) -> Path:
    """An eval.json whose raw answers are all wrong and whose grounded answers are all right."""
    text = render_input(LABELS, {"summary": "crash looping"})
    bad = "LambdaFunction: pod-restart\nParameters: {"
    preds = [{"index": i, "input": text, "expected": REF, "output": bad, "latency_ms": 100.0,
              "guard": guard(bad, LABELS).to_dict(), "grounded": {"output": REF}} for i in range(4)]
    none = render_output("none", {})  # the false-positive gate needs a no-action example
    preds.append({"index": 4, "input": render_input({"alertname": "Watchdog"}), "expected": none, "output": none,
                  "latency_ms": 100.0, "guard": guard(none).to_dict(), "grounded": {"output": none}})
    result = {"format": FORMAT, "config": "eval.yaml", "answer_format": LABELREF, "judged_on": "grounded",
              "model": {"kind": "full", "base": "m", "adapter": None, "template": "qwen", "path": "run"},
              "dataset": {"path": "t", "sha256": "0" * 64, "examples": 5}, "generation": {"mode": "batched", "batch_size": 4, "max_new_tokens": 64}, "adversarial": None,
              "scores": {"wall_seconds": 1.0}, "grounded": {"scores": {"wall_seconds": 1.1}}, "predictions": preds,
              "gate_config": {"remediation_accuracy_min": 0.9, "parameter_accuracy_min": 0.9, "false_positive_rate_max": 0.05,
                              "p95_latency_ms_max": 500.0}, "baseline": None, "loss_curves": {"train": [], "eval": []}}
    (tmp_path / "eval.json").write_text(json.dumps(result))
    return tmp_path / "eval.json"


def test_gates_judge_the_grounded_answers_and_both_are_reported(tmp_path: Path):
    result = rescore(_stored(tmp_path))
    assert result["scores"]["parameter_accuracy"] == 0.2 and result["scores"]["unparseable"] == 4
    assert result["grounded"]["scores"]["parameter_accuracy"] == 1.0
    assert result["predictions"][0]["grounded"]["judgement"]["parameters_ok"] is True
    assert {g["name"]: g["value"] for g in result["gates"]}["parameter_accuracy"] == 1.0
    assert result["passed"] is True
    raw = finish({**result, "judged_on": "raw"})  # a spec with grounding off: the raw answers fail
    assert raw["passed"] is False and raw["failure"].startswith("gate failed: remediation_accuracy 0.200")

    from sre_llm.evaluate.report import sections

    rows = {r[0]: r[1:] for r in sections(result)["scores"]}
    assert rows["parameter accuracy"][:2] == ["20.0 %", "100.0 %"]


def test_answer_format_comes_from_the_run_record(tmp_path: Path):
    (tmp_path / "output").mkdir()
    assert answer_format_of(tmp_path / "output") == LITERAL  # a run from before formats were recorded
    (tmp_path / "run.json").write_text(json.dumps({"answer_format": LABELREF}))
    assert answer_format_of(tmp_path / "output") == answer_format_of(tmp_path) == LABELREF
    (tmp_path / "run.json").write_text(json.dumps({"answer_format": "v9"}))
    with pytest.raises(BadInput, match=r"run.json: unknown answer format 'v9' \(known: literal-v1, labelref-v1\)"):
        answer_format_of(tmp_path)


def test_golden_sets_are_files_or_dataset_folders(tmp_path: Path):
    row = {"input": render_input(LABELS), "output": render_output("pod-restart", RESTART)}
    (tmp_path / "golden.jsonl").write_text(json.dumps(row) + "\n\n")
    path, rows, _ = load_golden(tmp_path / "golden.jsonl")
    assert path == tmp_path / "golden.jsonl"
    assert rows == [{"instruction": rows[0]["instruction"], **row}] and rows[0]["instruction"].startswith("You are agent-sre")
    (tmp_path / "ds").mkdir()
    for split in ("train", "test"):
        (tmp_path / "ds" / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "ds/quarantine.jsonl").write_text(json.dumps(row) + "\n")
    assert len(load_golden(tmp_path / "ds")[1]) == 2
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "output": "restart it"}) + "\n")
    with pytest.raises(BadInput) as exc:
        load_golden(tmp_path / "bad.jsonl")
    assert str(exc.value) == (f"{tmp_path}/bad.jsonl:2: expected answer does not parse: expected two lines: "
                              "'LambdaFunction: <name>' and 'Parameters: <JSON object>'")
    with pytest.raises(BadInput, match="no such file or folder"):
        load_golden(tmp_path / "missing.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match=r"no train.jsonl, validation.jsonl, test.jsonl in this folder"):
        load_golden(tmp_path / "empty")
