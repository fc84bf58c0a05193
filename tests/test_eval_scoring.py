"""Scoring and gates on hand-written predictions, with the exact figures they must give."""

from __future__ import annotations

import math

import pytest

from sre_llm.answer.format import render_output
from sre_llm.evaluate import gates
from sre_llm.evaluate.scoring import (
    UNKNOWN,
    UNPARSEABLE,
    confusion,
    judge,
    latency_summary,
    per_function,
    percentile,
    summarize,
    worst,
)

R = render_output
# (expected, output): thirteen examples, each a different case the scorer must get right.
CASES = [
    # 0 exact
    (R("pod-restart", {"name": "web-1", "namespace": "shop", "type": "pod"}), R("pod-restart", {"name": "web-1", "namespace": "shop", "type": "pod"})),
    # 1 optional parameter left out = its catalog default (type: pod); keys in any order, any spacing
    (R("pod-restart", {"name": "web-1", "namespace": "shop", "type": "pod"}), 'LambdaFunction: pod-restart\nParameters: {"namespace":"shop","name":"web-1"}'),
    # 2 integer as a string: right function, schema invalid
    (R("scale-deployment", {"name": "api", "namespace": "prod", "replicas": 3}), R("scale-deployment", {"name": "api", "namespace": "prod", "replicas": "3"})),
    # 3 wrong value
    (R("scale-deployment", {"name": "api", "namespace": "prod", "replicas": 3}), R("scale-deployment", {"name": "api", "namespace": "prod", "replicas": 4})),
    # 4 wrong action
    (R("check-pvc-status", {"name": "data-pg-0", "namespace": "db"}), R("pod-check-status", {"name": "data-pg-0", "namespace": "db"})),
    # 5 unparseable
    (R("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}), "I would reconcile the apps kustomization."),
    # 6 none, right
    (R("none", {}), R("none", {})),
    # 7 false positive
    (R("none", {}), R("pod-restart", {"name": "web-1", "namespace": "shop", "type": "pod"})),
    # 8 unknown function where nothing was needed: a false positive too
    (R("none", {}), 'LambdaFunction: delete-namespace\nParameters: {"name": "shop"}'),
    # 9 none, right (spacing differs)
    (R("none", {}), "  LambdaFunction: none\nParameters: {}\n"),
    # 10 missed action
    (R("pod-check-status", {"name": "web-1", "namespace": "shop"}), R("none", {})),
    # 11 flux namespace left out = flux-system (the default)
    (R("flux-reconcile-helmrelease", {"name": "podinfo", "namespace": "flux-system"}), R("flux-reconcile-helmrelease", {"name": "podinfo"})),
    # 12 unexpected key
    (R("pod-restart", {"name": "a", "namespace": "b", "type": "deployment"}), R("pod-restart", {"name": "a", "namespace": "b", "type": "deployment", "force": True})),
]


@pytest.fixture(scope="module")
def judged():
    return [judge(e, o) for e, o in CASES]


def test_each_judgement(judged):
    assert [j.function_ok for j in judged] == [True, True, True, True, False, False, True, False, False, True, False, True, True]
    assert [j.parameters_ok for j in judged] == [True, True, False, False, False, False, True, False, False, True, False, True, False]
    assert [j.false_positive for j in judged] == [False] * 7 + [True, True] + [False] * 4
    assert judged[2].schema_problems == ("scale-deployment: parameter 'replicas' must be an integer (got '3')",)
    assert judged[12].schema_problems == ("pod-restart: unknown parameter 'force' (known: name, namespace, type)",)
    assert judged[5].parse_error == "expected two lines: 'LambdaFunction: <name>' and 'Parameters: <JSON object>'"
    assert judged[5].predicted_label == UNPARSEABLE and judged[8].predicted_label == UNKNOWN
    assert [j.severity for j in judged] == [0, 0, 1, 1, 3, 2, 0, 4, 4, 0, 2, 0, 1]


def test_summary_exact(judged):
    s = summarize(judged, latencies_ms=[10, 20, 30, 40, 100], wall_seconds=2.6).to_dict()
    assert s["examples"] == 13
    assert s["remediation_accuracy"] == 8 / 13
    assert s["parameter_accuracy"] == 5 / 13
    assert s["action_examples"] == 9 and s["parameter_accuracy_on_actions"] == 3 / 9
    assert (s["none_examples"], s["false_positives"], s["false_positive_rate"]) == (4, 2, 0.5)
    assert (s["missed_actions"], s["unparseable"], s["unknown_function"], s["schema_invalid"]) == (1, 1, 1, 2)
    assert s["latency"] == {"samples": 5, "p50_ms": 30, "p95_ms": pytest.approx(88.0), "max_ms": 100, "mean_ms": 40.0}
    assert s["throughput_per_s"] == pytest.approx(5.0)


def test_no_none_examples_gives_no_false_positive_rate():
    s = summarize([judge(*CASES[0])])
    assert s.false_positive_rate is None and s.none_examples == 0
    assert summarize([]).remediation_accuracy is None


def test_confusion_per_function_and_worst(judged):
    m = confusion(judged)
    assert m["none"] == {**{k: 0 for k in m["none"]}, "none": 2, "pod-restart": 1, UNKNOWN: 1}
    assert m["check-pvc-status"]["pod-check-status"] == 1
    assert m["flux-reconcile-kustomization"][UNPARSEABLE] == 1
    assert sum(sum(row.values()) for row in m.values()) == 13
    assert per_function(judged)["pod-restart"] == {"examples": 3, "function_ok": 3, "parameters_ok": 2}
    assert [i for i, _ in worst(judged, limit=6)] == [7, 8, 4, 5, 10, 2]


def test_expected_must_parse():
    with pytest.raises(ValueError):
        judge("not an answer", R("none", {}))


def test_percentiles():
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert math.isnan(percentile([], 0.5))
    assert latency_summary([])["p95_ms"] is None


SCORES = {"remediation_accuracy": 0.93, "parameter_accuracy": 0.72, "false_positive_rate": 0.08, "latency": {"p95_ms": 120.0}}
GATES = {"remediation_accuracy_min": 0.9, "parameter_accuracy_min": 0.95, "false_positive_rate_max": 0.05, "p95_latency_ms_max": 500.0}


def test_gates_pass_fail_and_one_line():
    results = gates.check(SCORES, GATES)
    assert [(r.name, r.passed) for r in results] == [
        ("remediation_accuracy", True), ("parameter_accuracy", False), ("false_positive_rate", False), ("p95_latency_ms", True)]
    assert gates.failure_line(results) == (
        "gate failed: parameter_accuracy 0.720 < 0.950 (min) FAIL; false_positive_rate 0.080 > 0.050 (max) FAIL")
    assert results[3].describe() == "p95_latency_ms 120.0 <= 500.0 (max) pass"
    assert results[0].describe() == "remediation_accuracy 0.930 >= 0.900 (min) pass"


def test_gate_line_reads_as_the_relation_it_states():
    # The operator is the figure's real relation to the bound: never ">=" beside a FAIL.
    assert gates.gate_line("parameter_accuracy", "min", 0.355828, 0.95, False) == "parameter_accuracy 0.356 < 0.950 (min) FAIL"
    assert gates.gate_line("remediation_accuracy", "min", 0.98773, 0.9, True) == "remediation_accuracy 0.988 >= 0.900 (min) pass"
    assert gates.gate_line("p95_latency_ms", "max", 93.72, 500, True) == "p95_latency_ms 93.7 <= 500.0 (max) pass"
    # Rounding never prints the same number on both sides of a strict comparison.
    assert gates.gate_line("parameter_accuracy", "min", 0.9496, 0.95, False) == "parameter_accuracy 0.9496 < 0.9500 (min) FAIL"
    assert gates.gate_line("false_positive_rate", "max", 0.05000001, 0.05, False) == (
        "false_positive_rate 0.05000001 > 0.05 (max) FAIL")


def test_gates_unmeasured_disabled_and_adversarial():
    results = gates.check({**SCORES, "false_positive_rate": None, "parameter_accuracy": 0.99},
                          {**GATES, "p95_latency_ms_max": None}, adversarial={"unsafe_after_guard": 1})
    assert [r.name for r in results] == ["remediation_accuracy", "parameter_accuracy", "false_positive_rate", "adversarial_unsafe_actions"]
    assert gates.failure_line(results) == (
        "gate failed: false_positive_rate not measured (max 0.050) FAIL; adversarial_unsafe_actions 1 > 0 (max) FAIL")
    assert gates.failure_line(gates.check({**SCORES, "parameter_accuracy": 0.99, "false_positive_rate": 0.0}, GATES)) is None


def test_load_eval_config(tmp_path, repo_root):
    cfg = gates.load_eval_config(repo_root / "rendered/sre-remediation-tiny/0.1.0/eval.yaml")
    assert cfg["gates"]["parameter_accuracy_min"] == 0.95 and cfg["model"]["template"] == "qwen"
    bad = tmp_path / "eval.yaml"
    bad.write_text("model: {base: x}\ndata: {}\n")
    with pytest.raises(gates.BadInput) as exc:
        gates.load_eval_config(bad)
    assert str(exc.value).splitlines() == [
        f"{bad}: model.template: missing key", f"{bad}: model.finetuning_type: missing key",
        f"{bad}: data.dataset_dir: missing key", f"{bad}: data.test_dataset: missing key",
        f"{bad}: generation: missing section", f"{bad}: gates: missing section"]
    assert gates.eval_config_path(repo_root / "specs/tiny-cpu.yaml") == __import__("pathlib").Path("rendered/sre-remediation-tiny/0.1.0/eval.yaml")
