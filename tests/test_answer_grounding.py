"""Grounding: one definition of the allowed answers, compiled to a vLLM regex and to the
evaluator's decoding automaton; the two must accept exactly the same texts."""

from __future__ import annotations

import json
import random
import re

import pytest

from sre_llm.answer import (
    LABELREF,
    LITERAL,
    allowed_answers,
    guard,
    render_output,
    to_references,
    vllm_regex,
)
from sre_llm.dataset.synth import generate

ALERTS = [(r["labels"], r["annotations"]) for r in generate(60, seed=7)]


def _mutations(rng: random.Random, text: str, n: int) -> list[str]:
    """Near misses: one character deleted, inserted, replaced; prefixes; a suffix added."""
    out = [text[:k] for k in range(len(text))] + [text + "}", text + " ", text + "\n"]
    alphabet = '{}":, $.-_0123456789abcdelnprstxyz\n'
    for _ in range(n):
        k = rng.randrange(len(text))
        c = rng.choice(alphabet)
        out += [text[:k] + text[k + 1:], text[:k] + c + text[k:], text[:k] + c + text[k + 1:]]
    return out


@pytest.mark.parametrize("answer_format", [LABELREF, LITERAL])
def test_regex_and_automaton_accept_the_same_answers(answer_format):
    rng = random.Random(0)
    checked = 0
    for labels, ann in ALERTS[:25]:
        grounding = allowed_answers(labels, ann, answer_format)
        rx, auto = re.compile(grounding.regex()), grounding.automaton()
        answers = list(grounding.answers())
        allowed = set(answers)
        assert answers and len(answers) == len(allowed)
        for text in answers:
            assert rx.fullmatch(text), text
            state = auto.start
            for ch in text:  # every prefix stays alive, and the whole answer is final
                state = auto.step(state, ch)
                assert state, text
            assert auto.finished(state), text
        for text in rng.sample(answers, min(len(answers), 8)):
            for near in _mutations(rng, text, 6):
                assert bool(rx.fullmatch(near)) == auto.matches(near) == (near in allowed), near
                checked += 1
    assert checked > 1000, checked


def test_the_dataset_answer_is_allowed_and_passes_the_guard():
    """What the corpus teaches is inside the grounding, in both formats, and guarded to itself."""
    for rec in generate(200, seed=3):
        labels, ann = rec["labels"], rec["annotations"]
        fn = ann.get("lambda_function", "none")
        params = json.loads(ann["lambda_parameters"]) if fn != "none" else {}
        literal = render_output(fn, params)
        ref = render_output(fn, to_references(fn, params, labels))
        shown = {k: v for k, v in ann.items() if k in ("summary", "description")}
        assert allowed_answers(labels, shown, LITERAL).automaton().matches(literal), literal
        assert allowed_answers(labels, shown, LABELREF).automaton().matches(ref), ref
        d = guard(ref, labels, shown, answer_format=LABELREF)
        assert (d.function, d.parameters, d.reason) == (fn, params, None)


def test_what_grounding_rules_out():
    labels = {"alertname": "HighCPUUsage", "namespace": "shop", "deployment": "web", "severity": "warning"}
    ann = {"summary": "Deployment web has high CPU usage", "description": "CPU usage is 93%, scale to 4 replicas"}
    auto = allowed_answers(labels, ann, LABELREF).automaton()
    ok = 'LambdaFunction: scale-deployment\nParameters: {"name": "{{ $labels.deployment }}", "namespace": "{{ $labels.namespace }}", "replicas": 4}'
    assert auto.matches(ok)
    assert not auto.matches(ok.replace("4}", "93}"))  # above the guard's max_replicas (50)
    assert not auto.matches(ok.replace("4}", "5}"))  # a number the alert does not mention
    assert not auto.matches(ok.replace("deployment }}", "pod }}"))  # a label the alert lacks
    assert not auto.matches(ok.replace("{{ $labels.deployment }}", "web"))  # literal, in labelref-v1
    assert not auto.matches(ok.replace("{{ $labels.deployment }}", "{{ $labels.alertname }}"))
    assert not auto.matches(ok.replace('", "', '","'))  # not the canonical form
    assert not auto.matches("LambdaFunction: delete-namespace\nParameters: {}")
    assert auto.matches("LambdaFunction: none\nParameters: {}")
    # Without a usable number there is no scale answer at all, only the other functions.
    bare = allowed_answers({**labels}, {"summary": "high CPU"}, LABELREF)
    assert not any(a.startswith("LambdaFunction: scale-deployment") for a in bare.answers())


def test_vllm_regex_shape():
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-1"}
    rx = vllm_regex(labels, {}, LABELREF)
    assert rx.startswith("LambdaFunction: (none\\nParameters: \\{\\}|check-pvc-status\\nParameters: \\{")
    assert "\\{\\{ \\$labels\\.pod \\}\\}" in rx and "alertname" not in rx
    assert re.fullmatch(rx, 'LambdaFunction: pod-restart\nParameters: {"name": "{{ $labels.pod }}", "namespace": '
                            '"{{ $labels.namespace }}", "type": "pod"}')
    assert "web-1" in vllm_regex(labels, {}, LITERAL)


def test_regex_literal_matches_exactly_its_text() -> None:
    """Every character escaped right: the literal's regex matches the text itself and nothing
    longer, for every ASCII character (specials, controls, DEL, newline) and beyond."""
    import random
    import re

    from sre_llm.answer.grounding import _regex_literal

    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x80)] + ["é", "İ", "\u2028", "😀"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        pattern = _regex_literal(text)
        assert re.fullmatch(pattern, text, flags=re.DOTALL), (text, pattern)
        assert not re.fullmatch(pattern, text + "x", flags=re.DOTALL)
    assert _regex_literal("a.b\n{c}\x01\x7f") == "a\\.b\\n\\{c\\}\\x01\\x7f"
