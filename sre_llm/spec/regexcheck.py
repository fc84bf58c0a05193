"""Static check for regular expressions that backtrack catastrophically (ReDoS).

Python's ``re`` is a backtracking engine: ``(a+)+$`` against ``"a" * 30 + "!"`` tries 2**30 ways
before failing. Specs carry regexes that run over every alert (``redaction.extra_patterns``), so a
bad one would stall the dataset build — or be a way to stall it. The shape that causes it is a
repetition whose body can be consumed, in more than one way, by an unbounded repetition inside it:
``(a+)+``, ``(a*b?)*``, ``(\\w+\\s?)+``, ``(.*a){20}``, or alternatives that start alike. A body that also needs a character the inner
repetition cannot match (``(\\.[a-z]+)+``, ``(\\w+,)+``) splits the input one way only and is safe.

Characters are judged over ASCII (what matters for the overlap test). A heuristic, like every
static ReDoS check: it catches the classic shapes (tests/test_spec_limits.py lists them); subtler
ones (``(a|aa)+``, which Python's parser rewrites to ``(a(?:|a))+``) pass.
"""

from __future__ import annotations

from functools import lru_cache

try:  # Python 3.11+
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_ALPHABET = frozenset(chr(i) for i in range(128))
_CATEGORY = {
    c.CATEGORY_DIGIT: frozenset(ch for ch in _ALPHABET if ch.isdigit()),
    c.CATEGORY_WORD: frozenset(ch for ch in _ALPHABET if ch.isalnum() or ch == "_"),
    c.CATEGORY_SPACE: frozenset(ch for ch in _ALPHABET if ch.isspace()),
}
_CATEGORY.update({
    c.CATEGORY_NOT_DIGIT: _ALPHABET - _CATEGORY[c.CATEGORY_DIGIT],
    c.CATEGORY_NOT_WORD: _ALPHABET - _CATEGORY[c.CATEGORY_WORD],
    c.CATEGORY_NOT_SPACE: _ALPHABET - _CATEGORY[c.CATEGORY_SPACE],
})
_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT)
_POSSESSIVE = getattr(c, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(c, "ATOMIC_GROUP", None)


def _chars(items) -> frozenset[str]:
    """Every character ``items`` can consume."""
    out: set[str] = set()
    for op, av in items:
        if op == c.LITERAL:
            out.add(chr(av)) if av < 128 else None
        elif op == c.NOT_LITERAL:
            out |= _ALPHABET - {chr(av)}
        elif op == c.ANY:
            out |= _ALPHABET
        elif op == c.IN:
            out |= _in(av)
        elif op in _REPEATS or op == _POSSESSIVE:
            out |= _chars(av[2])
        elif op == c.SUBPATTERN:
            out |= _chars(av[-1])
        elif op == _ATOMIC:
            out |= _chars(av)
        elif op == c.BRANCH:
            for branch in av[1]:
                out |= _chars(branch)
    return frozenset(out)


def _in(av) -> frozenset[str]:
    chars: set[str] = set()
    negate = False
    for op, arg in av:
        if op == c.NEGATE:
            negate = True
        elif op == c.LITERAL:
            chars.add(chr(arg)) if arg < 128 else None
        elif op == c.RANGE:
            chars |= {chr(i) for i in range(arg[0], min(arg[1], 127) + 1)}
        elif op == c.CATEGORY:
            chars |= _CATEGORY.get(arg, _ALPHABET)
    return frozenset(_ALPHABET - chars if negate else chars)


def _mandatory(items) -> list[frozenset[str]]:
    """Character sets of the elements ``items`` must consume at least once (outside repetitions
    that may match nothing)."""
    out = []
    for op, av in items:
        if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
            out.append(_chars([(op, av)]))
        elif op in _REPEATS and av[0] >= 1:
            out.append(_chars(av[2]))
        elif op == c.SUBPATTERN:
            out += _mandatory(av[-1])
    return out


def _unbounded_inside(items) -> list[frozenset[str]]:
    """Character sets of the backtracking unbounded repetitions in ``items`` (not possessive or atomic)."""
    out = []
    for op, av in items:
        if op in _REPEATS:
            if av[1] == c.MAXREPEAT:
                out.append(_chars(av[2]))
            out += _unbounded_inside(av[2])
        elif op == c.SUBPATTERN:
            out += _unbounded_inside(av[-1])
        elif op == c.BRANCH:
            for branch in av[1]:
                out += _unbounded_inside(branch)
    return out


def _ambiguous_branches(av) -> bool:
    """Alternatives that can start with the same character: ``(a|aa)+`` splits "aaaa" many ways."""
    firsts = [_chars(b[:1]) for b in av[1]]
    return any(firsts[i] & firsts[j] for i in range(len(firsts)) for j in range(i + 1, len(firsts)))


def _walk(items) -> str | None:
    for op, av in items:
        if op in _REPEATS:
            lo, hi, body = av
            if hi == c.MAXREPEAT or hi > 16:
                for inner in _unbounded_inside(body):
                    others = [m for m in _mandatory(body) if not (m <= inner)]
                    if all(m & inner for m in others):
                        return "a repeated group holds an unbounded repetition that can match all of it"
                alternatives = [a for o, a in body if o == c.BRANCH] + \
                    [a2 for o, a in body if o == c.SUBPATTERN for o2, a2 in a[-1] if o2 == c.BRANCH]
                if any(_ambiguous_branches(a) for a in alternatives):
                    return "a repeated group has alternatives that can match the same text"
            found = _walk(body)
        elif op == c.SUBPATTERN:
            found = _walk(av[-1])
        elif op == c.BRANCH:
            found = next((f for f in (_walk(b) for b in av[1]) if f), None)
        else:
            found = None
        if found:
            return found
    return None


@lru_cache(maxsize=256)
def catastrophic(pattern: str) -> str | None:
    """Why ``pattern`` can backtrack exponentially, or None. The pattern must compile."""
    try:
        return _walk(sre_parse.parse(pattern))
    except Exception:  # noqa: BLE001 - re.compile accepted it; a parser quirk must not block the spec
        return None
