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


def test_secret_gate_never_hides_a_match() -> None:
    """``_may_hold_secret`` may say yes too often, never no where a secret pattern matches."""
    rnd = random.Random(5)
    parts = ["ghp_", "gho_", "github_pat_", "lin_api_", "lin_oauth_", "glpat-", "xoxb-", "sk-", "eyJ", "AKIA", "ASIA",
             "-----BEGIN RSA PRIVATE KEY-----", "AGE-SECRET-KEY-1", "password=", "PASSWD: ", "pwd=", "Secret=",
             "token: ", "api_key=", "API-KEY=", "access_key=", "private_key=", "client_secret=", "Bearer ",
             "Basic ", "\u017fecret=", "api_\u212aey=", "job_name: ", "pod_uid", "_", "-", " ", ".", "\n",
             "x" * 20, "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5", "QUJDREVGR0hJSktMTU5PUA==", "abcdefgh.ijklmnop.qrstuvwx"]
    hits = 0
    for _ in range(40_000):
        text = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 6)))
        matches = bool(redact._SECRET.search(text) or redact._KEYED.search(text))
        if matches:
            assert redact._may_hold_secret(text), text
            hits += 1
    assert hits > 5000  # the inputs really exercise the patterns
    assert not redact._may_hold_secret("alertname: KubePodCrashLooping\njob_name: backup\nnamespace: shop")


def _to_references_plain(function, params, labels):  # the straightforward form the fast one replaced
    from sre_llm.answer.references import ACTIONS, _label_preference, reference, visible_labels

    action = ACTIONS.get(function)
    if action is None or not params:
        return dict(params or {})
    by_value: dict = {}
    for name, value in visible_labels(labels).items():
        if name != "alertname":
            by_value.setdefault(value, []).append(name)
    out = {}
    for key, value in params.items():
        spec = action.params.get(key)
        integer = type(value) is int
        constant = spec is not None and (value in spec.choices or (not spec.required and value == spec.default))
        names = by_value.get(str(value)) if (type(value) is str or integer) and not constant else None
        out[key] = reference(_label_preference(key, names, integer)) if names else value
    return out


def test_to_references_is_the_plain_form() -> None:
    from sre_llm.answer.references import ACTIONS, to_references

    rnd = random.Random(3)
    functions = [*ACTIONS, "unknown"]
    label_names = ["pod", "name", "deployment", "expected", "replicas", "alertname", "namespace", "x", "alertstate"]
    values = ["a", "b", "3", 3, "pod", "deployment", "flux-system", "ai", 2.0, None, ["a"], {"a": 1}, True]
    referenced = 0
    for _ in range(20_000):
        labels = {rnd.choice(label_names): rnd.choice(["a", "b", "3", "pod", "flux-system", "ai"]) for _ in range(rnd.randint(0, 6))}
        fn = rnd.choice(functions)
        keys = [*ACTIONS[fn].params, "zz"] if fn in ACTIONS else ["k"]
        params = {k: rnd.choice(values) for k in rnd.sample(keys, rnd.randint(0, len(keys)))}
        want, got = _to_references_plain(fn, params, labels), to_references(fn, params, labels)
        assert (list(got.items()), [type(v) for v in got.values()]) == (list(want.items()), [type(v) for v in want.values()])
        referenced += any(isinstance(v, str) and v.startswith("{{") for v in got.values())
    assert referenced > 2000


def test_folds_to_ascii_is_every_such_character() -> None:
    ascii_letter = re.compile("(?i)[a-z]")
    assert {chr(c) for c in range(0x80, 0x110000) if ascii_letter.match(chr(c))} == set(redact._FOLDS_TO_ASCII)
