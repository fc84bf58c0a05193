"""The canonical example format: one renderer, one parser, exact bytes."""

from __future__ import annotations

import pytest

from sre_llm.answer.format import INSTRUCTION, ParseError, parse_output, render_input, render_output


def test_render_output_is_canonical():
    assert render_output("pod-restart", {"type": "pod", "namespace": "shop", "name": "web-7d4f9c6b8-x2x9q"}) == (
        'LambdaFunction: pod-restart\nParameters: {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}'
    )
    assert render_output("scale-deployment", {"replicas": 3, "name": "api", "namespace": "prod"}) == (
        'LambdaFunction: scale-deployment\nParameters: {"name": "api", "namespace": "prod", "replicas": 3}'
    )
    assert render_output("none", {}) == "LambdaFunction: none\nParameters: {}"
    assert render_output("none", {"ignored": 1}) == "LambdaFunction: none\nParameters: {}"
    assert render_output("check-pvc-status", {"name": "données", "namespace": "x"}) == (
        'LambdaFunction: check-pvc-status\nParameters: {"name": "données", "namespace": "x"}'
    )


@pytest.mark.parametrize(
    "fn,params",
    [("pod-restart", {"name": "a", "namespace": "b", "type": "deployment"}), ("none", {}),
     ("scale-deployment", {"name": "a", "namespace": "b", "replicas": 0})],
)
def test_parse_round_trips(fn, params):
    text = render_output(fn, params)
    assert parse_output(text, strict=True) == (fn, params)


def test_parse_is_lenient_on_spacing_unless_strict():
    text = '  LambdaFunction:  pod-restart\r\nParameters:{"namespace":"b","name":"a"}\n'
    assert parse_output(text) == ("pod-restart", {"name": "a", "namespace": "b"})
    with pytest.raises(ParseError, match="not in canonical form"):
        parse_output('LambdaFunction: pod-restart\nParameters: {"namespace": "b", "name": "a"}', strict=True)


@pytest.mark.parametrize(
    "text,message",
    [
        ("pod-restart", "expected two lines: 'LambdaFunction: <name>' and 'Parameters: <JSON object>'"),
        ("LambdaFunction: \nParameters: {}", "LambdaFunction is empty"),
        ("LambdaFunction: pod-restart\nParameters: {name: a}", "Parameters is not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        ("LambdaFunction: pod-restart\nParameters: [1]", "Parameters must be a JSON object (got list)"),
        ('LambdaFunction: pod-restart\nParameters: {"a": 1}\nthanks!', "unexpected text after the Parameters JSON: 'thanks!'"),
        ("Sure! LambdaFunction: none\nParameters: {}", "expected two lines: 'LambdaFunction: <name>' and 'Parameters: <JSON object>'"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ParseError) as exc:
        parse_output(text)
    assert str(exc.value) == message


def test_parse_rejects_non_text():
    with pytest.raises(ParseError, match="answer must be text"):
        parse_output(None)  # type: ignore[arg-type]


def test_render_input_fixed_order():
    labels = {
        "severity": "warning", "zone": "eu-1", "pod": "web-7d4f9c6b8-x2x9q", "namespace": "shop",
        "alertname": "KubePodCrashLooping", "container": "web", "__name__": "ALERTS", "alertstate": "firing",
        "cluster": "prod",
    }
    ann = {"description": "Pod shop/web is\n  restarting.", "summary": "CrashLoop", "lambda_function": "pod-restart",
           "lambda_parameters": "{}", "runbook_url": "http://x"}
    assert render_input(labels, ann) == (
        "alertname: KubePodCrashLooping\n"
        "namespace: shop\n"
        "pod: web-7d4f9c6b8-x2x9q\n"
        "container: web\n"
        "severity: warning\n"
        "cluster: prod\n"
        "zone: eu-1\n"
        "summary: CrashLoop\n"
        "description: Pod shop/web is restarting."
    )


def test_instruction_names_every_answer():
    for name in ("check-pvc-status", "flux-reconcile-gitrepository", "flux-reconcile-helmrelease",
                 "flux-reconcile-kustomization", "pod-check-status", "pod-restart", "scale-deployment", "none"):
        assert name in INSTRUCTION
    assert INSTRUCTION.endswith("LambdaFunction: <name>\nParameters: <JSON object>")
