"""McNemar's test for two models answering the same examples (pure, no scipy).

Both models answer every example, so the outcomes are paired: only the discordant pairs say
anything about which is better — ``b`` examples the champion got right and the challenger wrong,
``c`` the other way round. Under "equally good" each discordant pair is a fair coin. The
rollout's two-proportion test treats the arms as independent samples, which throws away the
pairing and needs far more examples to see the same difference.

- small counts (``b + c < EXACT_BELOW``): the exact two-sided binomial test,
  ``min(1, 2 · P[X ≤ min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``;
- otherwise the chi-square statistic with Edwards' continuity correction,
  ``(|b − c| − 1)² / (b + c)`` on one degree of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

EXACT_BELOW = 25  # b + c under this: exact binomial (the usual rule of thumb)


@dataclass(frozen=True)
class McNemar:
    both_right: int
    champion_only: int  # b: the champion right, the challenger wrong
    challenger_only: int  # c: the challenger right, the champion wrong
    both_wrong: int
    method: str  # "exact-binomial" | "chi-square-cc" | "none" (no discordant pair)
    statistic: float | None
    p_value: float

    @property
    def n(self) -> int:
        return self.both_right + self.champion_only + self.challenger_only + self.both_wrong

    def better(self, significance: float) -> bool:
        """The challenger wins more discordant pairs and the difference is significant."""
        return self.challenger_only > self.champion_only and self.p_value < significance

    def worse(self, significance: float) -> bool:
        return self.champion_only > self.challenger_only and self.p_value < significance

    def to_dict(self) -> dict:
        return {**asdict(self), "n": self.n}


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (the smaller tail doubled)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def chi2_sf_1(x: float) -> float:
    """Survival function of chi-square with one degree of freedom: ``erfc(sqrt(x / 2))``."""
    return math.erfc(math.sqrt(max(x, 0.0) / 2))


def test_counts(both_right: int, b: int, c: int, both_wrong: int) -> McNemar:
    """McNemar's test from the 2×2 table (``b`` champion only right, ``c`` challenger only right)."""
    if min(both_right, b, c, both_wrong) < 0:
        raise ValueError("counts must be >= 0")
    if b + c == 0:
        return McNemar(both_right, b, c, both_wrong, "none", None, 1.0)
    if b + c < EXACT_BELOW:
        return McNemar(both_right, b, c, both_wrong, "exact-binomial", None, binomial_two_sided(min(b, c), b + c))
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(both_right, b, c, both_wrong, "chi-square-cc", stat, chi2_sf_1(stat))


def paired(champion: Sequence[bool], challenger: Sequence[bool]) -> McNemar:
    """The test from per-example correctness of both models, in the same order."""
    if len(champion) != len(challenger):
        raise ValueError(f"unpaired: {len(champion)} champion answers, {len(challenger)} challenger answers")
    table = {(a, b): 0 for a in (True, False) for b in (True, False)}
    for a, b in zip(champion, challenger):
        table[(bool(a), bool(b))] += 1
    return test_counts(table[(True, True)], table[(True, False)], table[(False, True)], table[(False, False)])
