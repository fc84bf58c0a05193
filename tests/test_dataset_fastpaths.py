"""The pipeline's fast paths give exactly what the plain forms they replace give.

Each fast path (the IPv4 pattern with a first-character scan, hand-assembled canonical JSON,
the direct JSON scanner) is compared with the straightforward form on seeded random inputs
built to hit the edge cases, so a speed-up can never change a dataset.
"""

from __future__ import annotations

import json
import random
import re

from sre_llm.dataset import redact
from sre_llm.answer.format import canonical_json
from sre_llm.dataset.records import _str_map, loads

_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_PLAIN_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")


def test_ipv4_pattern_matches_the_plain_one() -> None:
    rnd = random.Random(11)
    octets = ["0", "1", "7", "25", "99", "100", "199", "2", "24", "249", "250", "255", "256", "300",
              "012", "1000", "\u0661", "1\u0662", "a", "_", ""]
    seps = ["."] * 12 + ["..", " ", ":", "-", "/", "x", "_", "\n"]
    hits = 0
    for _ in range(60_000):
        text = "".join(rnd.choice(octets) + rnd.choice(seps) for _ in range(rnd.randint(1, 9)))
        expected = _PLAIN_IPV4.subn("<ip>", text)
        assert redact._IPV4.subn("<ip>", text) == expected, text
        hits += expected[1] > 0
    assert hits > 1000  # the inputs really exercise the pattern
    for text, want in [("10.0.0.1", "<ip>"), ("x10.0.0.1", "x10.0.0.1"), ("1.2.3.4.5", "1.2.3.4.5"),
                       ("256.1.1.1", "256.1.1.1"), ("a 255.255.255.255:9100", "a <ip>:9100"),
                       (".1.2.3.4", ".1.2.3.4"), ("v1.2.3.4", "v1.2.3.4"), ("012.1.1.1", "012.1.1.1")]:
        assert redact._IPV4.sub("<ip>", text) == want


def test_canonical_json_is_json_dumps() -> None:
    rnd = random.Random(5)
    chars = 'ab"\\\n\t\x00\x1f\u00e9\u2028\U0001f600 {}:,'

    def word() -> str:
        return "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 6)))

    for _ in range(20_000):
        params: dict = {}
        for _ in range(rnd.randint(0, 4)):
            r = rnd.random()
            params[word()] = (word() if r < 0.5 else rnd.randint(-10**20, 10**20) if r < 0.7
                              else rnd.choice([True, False, None, 1.5, [1, "a"], {"x": 1}]))
        assert canonical_json(params) == json.dumps(params, sort_keys=True, ensure_ascii=False)
    assert canonical_json({"replicas": 3, "name": "web"}) == '{"name": "web", "replicas": 3}'


def test_loads_is_json_loads_results_and_errors() -> None:
    cases = ['{"a": 1}', '{"a": 1}\n', '{"a": 1} \n', '{"a": 1}}', "{", '{"a": x}', ' {"a": 1}',
             "[1]", '{"a": 1}\r\n', "{}", '{"a": "\\u00e9"}\n', '{"a": 1}\n\n', "{}{}", '"}"']
    for text in cases:
        try:
            want: object = json.loads(text)
        except json.JSONDecodeError as exc:
            want = ("error", exc.msg, exc.pos)
        try:
            got: object = loads(text)
        except json.JSONDecodeError as exc:
            got = ("error", exc.msg, exc.pos)
        assert got == want, text


def test_str_map() -> None:
    assert _str_map({}) and _str_map({"a": "b", "c": "d"})
    assert not _str_map({"a": "b", "c": 1}) and not _str_map({"a": None}) and not _str_map(["a"])
