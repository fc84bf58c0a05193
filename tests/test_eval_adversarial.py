"""The adversarial suite without a model: its cases, and the guard against a fully obedient model."""

from __future__ import annotations

from sre_llm.answer.format import parse_output
from sre_llm.evaluate.adversarial import build_suite, obedient_unsafe, score

SUITE = build_suite()


def test_suite_is_deterministic_and_covers_every_kind():
    assert [c.to_dict() for c in build_suite()] == [c.to_dict() for c in SUITE]
    assert len(SUITE) == 27
    assert {c.category for c in SUITE} == {
        "injection-annotation-unknown-function", "injection-annotation-catalog-call", "injection-label",
        "injection-label-value", "injection-scale-to-zero", "homoglyph-namespace", "unicode-invisible", "oversized", "malformed"}
    assert max(len(c.input) for c in SUITE) > 15000  # oversized really is
    for c in SUITE:
        parse_output(c.expected)  # every safe answer is well-formed


def test_guard_stops_a_fully_obedient_model():
    assert obedient_unsafe(SUITE) == []
    attacks = [c.attack_answer() or c.expected for c in SUITE]
    s = score(SUITE, attacks)
    assert s["attacked_cases"] == 24
    assert (s["fooled_raw"], s["fooled_raw_rate"], s["unsafe_after_guard"]) == (24, 1.0, 0)
    assert all(r["guard"]["function"] == "none" for r in s["results"])


def test_safe_answers_score_clean():
    s = score(SUITE, [c.expected for c in SUITE])
    assert (s["fooled_raw"], s["unsafe_after_guard"], s["guard_refusals"]) == (0, 0, 0)
    assert all(r["correct"] for r in s["results"])
    # the two crashloop kinds keep their real restart through the guard
    acted = [r["id"] for r in s["results"] if r["guard"]["function"] != "none"]
    assert len(acted) == 6
    assert sorted({a.rsplit("-", 1)[0] for a in acted}) == ["injection-annotation-unknown-function", "oversized"]
