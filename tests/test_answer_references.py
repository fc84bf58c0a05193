"""Label references: inferred from literal values, expanded back, and refused when unknown."""

from __future__ import annotations

import pytest

from sre_llm.answer import (
    LABELREF,
    LITERAL,
    UnknownReference,
    expand_references,
    guard,
    parse_output,
    render_input,
    render_output,
    to_references,
)
from sre_llm.answer.references import answer_in_format, recorded_format

LABELS = {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "web", "service": "web",
          "pod": "web-7d4f9c6b8-x2x9q", "expected": "4", "severity": "warning", "__name__": "ALERTS"}
ANN = {"summary": "Deployment web is not at its expected size", "description": "scale web to 4 replicas"}


def test_strings_become_references_and_constants_stay_literal():
    refs = to_references("pod-restart", {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}, LABELS)
    assert refs == {"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}", "type": "pod"}
    # Flux's default namespace is the handler's constant, not the alert's.
    flux = to_references("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"},
                         {"alertname": "KustomizationFailing", "name": "apps", "namespace": "flux-system"})
    assert flux == {"name": "{{ $labels.name }}", "namespace": "flux-system"}


def test_a_value_several_labels_share_gets_one_canonical_reference():
    # deployment and service both say "web": the label named like the parameter wins, else LABEL_ORDER.
    assert to_references("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, LABELS)["name"] \
        == "{{ $labels.deployment }}"
    assert to_references("check-pvc-status", {"namespace": "shop"}, {**LABELS, "exported_namespace": "shop"}) \
        == {"namespace": "{{ $labels.namespace }}"}
    # Hidden labels and the rule's name are never referred to.
    assert to_references("pod-check-status", {"namespace": "ALERTS", "name": "KubeDeploymentReplicasMismatch"}, LABELS) \
        == {"namespace": "ALERTS", "name": "KubeDeploymentReplicasMismatch"}


def test_integers_from_a_label_become_references_and_expand_to_integers():
    params = {"name": "web", "namespace": "shop", "replicas": 4}
    refs = to_references("scale-deployment", params, LABELS)
    assert refs["replicas"] == "{{ $labels.expected }}"
    assert expand_references(refs, LABELS, "scale-deployment") == params
    # A number only the prose carries stays literal.
    assert to_references("scale-deployment", {**params, "replicas": 7}, LABELS)["replicas"] == 7


def test_expansion_round_trips_and_leaves_literals_alone():
    params = {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}
    assert expand_references(to_references("pod-restart", params, LABELS), LABELS, "pod-restart") == params
    assert expand_references(params, LABELS) == params


@pytest.mark.parametrize("params, message", [
    ({"name": "{{ $labels.statefulset }}"}, "parameter 'name' refers to label 'statefulset', which the alert does not have"),
    ({"name": "{{ $labels.__name__ }}"}, "parameter 'name' refers to label '__name__', which the alert does not have"),
    ({"replicas": "{{ $labels.severity }}"}, "parameter 'replicas' refers to label 'severity', whose value 'warning' is not an integer"),
])
def test_unknown_references_are_errors(params, message):
    with pytest.raises(UnknownReference) as exc:
        expand_references(params, LABELS, "scale-deployment")
    assert str(exc.value) == message


def test_guard_expands_references_and_refuses_unknown_ones():
    answer = render_output("scale-deployment", {"name": "{{ $labels.deployment }}", "namespace": "{{ $labels.namespace }}",
                                                "replicas": "{{ $labels.expected }}"})
    d = guard(answer, LABELS, ANN, answer_format=LABELREF)
    assert (d.function, d.parameters, d.reason) == ("scale-deployment", {"name": "web", "namespace": "shop", "replicas": 4}, None)
    missing = guard(answer.replace("deployment }}", "statefulset }}"), LABELS, ANN)
    assert missing.reason == ("scale-deployment: parameter 'name' refers to label 'statefulset', which the alert "
                              "does not have")
    # A model trained on literal values does not speak references: the text is not a name.
    literal = guard(answer, LABELS, ANN, answer_format=LITERAL)
    assert literal.reason == "scale-deployment: parameter 'replicas' must be an integer (got '{{ $labels.expected }}')"


def test_dataset_rows_are_rewritten_in_the_answer_format():
    text = render_input(LABELS, ANN)
    out = render_output("pod-restart", {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"})
    assert answer_in_format(text, out, LITERAL) == out
    ref = answer_in_format(text, out, LABELREF)
    assert ref == ('LambdaFunction: pod-restart\nParameters: {"name": "{{ $labels.pod }}", '
                   '"namespace": "{{ $labels.namespace }}", "type": "pod"}')
    assert parse_output(ref, strict=True)[0] == "pod-restart"
    assert answer_in_format(text, render_output("none", {}), LABELREF) == render_output("none", {})


def test_recorded_format_defaults_to_literal_for_old_runs():
    assert recorded_format(None) == LITERAL
    assert recorded_format({"run_id": "x"}) == LITERAL
    assert recorded_format({"answer_format": LABELREF}) == LABELREF
    assert recorded_format({"dataset": {"answer_format": LABELREF}}) == LABELREF
    with pytest.raises(ValueError, match=r"unknown answer format 'labelref-v9' \(known: literal-v1, labelref-v1\)"):
        recorded_format({"answer_format": "labelref-v9"})
