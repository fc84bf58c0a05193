"""The pure parts of `sre-llm retrain`: McNemar's test against known values, the dataset delta
(old examples keep their split; drift), and the schedule."""

from __future__ import annotations

import pytest

from sre_llm.retrain import mcnemar
from sre_llm.retrain.data import compare
from sre_llm.retrain.loop import choose_mode
from sre_llm.spec.retrain import RetrainSpec


@pytest.mark.parametrize(("k", "n", "p"), [
    (0, 0, 1.0),
    (0, 5, 0.0625),  # 2 · (1/2)^5
    (1, 10, 0.021484375),  # 2 · 11/1024
    (2, 12, 0.03857421875),  # 2 · (1 + 12 + 66)/4096
    (5, 10, 1.0),
    (8, 10, 0.109375),  # the larger count: the smaller tail is the same
])
def test_exact_binomial_known_values(k, n, p):
    assert mcnemar.binomial_two_sided(k, n) == pytest.approx(p, abs=1e-12)


def test_chi_square_with_continuity_correction_known_value():
    # b = 10, c = 25: (|10 - 25| - 1)^2 / 35 = 5.6; chi2(1).sf(5.6) = 0.017960478...
    r = mcnemar.test_counts(50, 10, 25, 15)
    assert r.method == "chi-square-cc" and r.statistic == pytest.approx(5.6)
    assert r.p_value == pytest.approx(0.0179604, abs=1e-6)
    assert r.better(0.05) and not r.better(0.01) and not r.worse(0.05)


def test_against_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(3, 9), (0, 7), (12, 4), (30, 45), (100, 80)]:
        r = mcnemar.test_counts(0, b, c, 0)
        want = (stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c < mcnemar.EXACT_BELOW
                else stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1))
        assert r.p_value == pytest.approx(want, rel=1e-9), (b, c)


def test_paired_counts_only_discordant_pairs():
    champion = [True, True, False, False, True, False]
    challenger = [True, False, True, True, True, False]
    r = mcnemar.paired(champion, challenger)
    assert (r.both_right, r.champion_only, r.challenger_only, r.both_wrong) == (2, 1, 2, 1)
    assert r.method == "exact-binomial" and r.p_value == 1.0 and not r.better(0.05)
    assert mcnemar.paired([True] * 4, [True] * 4).method == "none"
    with pytest.raises(ValueError, match="unpaired"):
        mcnemar.paired([True], [True, False])


def _row(name: str, pod: str, extra: str = "") -> dict[str, str]:
    return {"input": f"alertname: {name}\nnamespace: ai\npod: {pod}{extra}", "output": "{}", "instruction": "x"}


def test_compare_finds_new_examples_moves_and_drift():
    old = {"train": [_row("A", "p1")], "validation": [], "test": [_row("A", "p2")]}
    merged = {"train": [_row("A", "p1"), _row("B", "p3")], "validation": [_row("A", "p4", "\nnode: n1")],
              "test": [_row("A", "p2")]}
    d = compare(old, merged)
    assert (d.kept, d.moved, d.dropped, d.new_count) == (2, [], 0, 2)
    assert d.new_alertnames == ["B"]
    assert d.new_label_sets == [["alertname", "namespace", "node", "pod"]]
    moved = compare(old, {"train": [_row("A", "p1"), _row("A", "p2")], "validation": [], "test": []})
    assert moved.moved == [("alertname: A", "test", "train")]


def test_schedule():
    s = RetrainSpec()
    day = 86400.0
    assert choose_mode("auto", s, 3 * day, 0.0, [])[0] is None
    assert choose_mode("auto", s, 8 * day, 0.0, []) [0] == "incremental"
    assert choose_mode("auto", s, 31 * day, 0.0, [])[0] == "full"
    recent_full = [{"mode": "full", "challenger": "1.0.1", "started": "1970-01-25T00:00:00Z"}]
    assert choose_mode("auto", s, 31 * day, 0.0, recent_full)[0] == "incremental"
    assert choose_mode("full", s, 0.0, 0.0, []) == ("full", "--mode full")
