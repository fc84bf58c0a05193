"""Secret and PII redaction on every string a record carries, with counts per kind.

Redaction works on values (label values, annotation text, parameter values), never on the
rendered example, so a replacement can never break the JSON of an answer. Replacements are
short markers (``<email>``, ``<ip>``, ``<secret>``, ``<credentials>``, ``<redacted>``) that carry
no trace of what they replaced.

Speed matters (100k alerts in the pipeline's budget): each kind has a cheap gate (``"@" in
text``) before its regular expression runs, and most records pass every gate untouched.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

# Known token shapes, then "key = value" pairs whose key says the value is secret.
_TOKEN_SHAPES = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    r"AGE-SECRET-KEY-1[0-9A-Z]{20,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
    r"\bglpat-[A-Za-z0-9_-]{20,}\b",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
    r"\bsk-[A-Za-z0-9_-]{20,}\b",
    r"\blin_(?:api|oauth)_[A-Za-z0-9]{20,}\b",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
)
_SECRET = re.compile("|".join(_TOKEN_SHAPES), re.S)
_KEYED = re.compile(
    r"(?i)\b((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)"
    r"\"?\s*[:=]\s*\"?|\b[Bb]earer\s+(?=[A-Za-z0-9._~+/=-]{16})|\bBasic\s+(?=[A-Za-z0-9+/=]{12}))"
    r"([^\s\"',;&]{4,})"
)

# Every non-ASCII character that re.IGNORECASE matches to an ASCII letter (İ ı ſ K); a test scans Unicode.
_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"


def _may_hold_secret(value: str) -> bool:
    """Cheap substring tests first: a case-insensitive regex over every text costs more than
    everything else redaction does.

    Only the token shapes that need an underscore (``gh?_``, ``github_pat_``, ``lin_``) open on
    one: most alert texts carry an underscore (``job_name``), and sending all of those to both
    regexes cost a tenth of the pipeline. ``(?i)`` also matches the four non-ASCII letters that
    fold to ASCII ones (long s in ``ſecret``, the Kelvin sign) where ``str.lower`` does not: those go
    through too."""
    if not value.isascii() and any(c in value for c in _FOLDS_TO_ASCII):
        return True
    if "-" in value and ("sk-" in value or "xox" in value or "glpat-" in value or "BEGIN" in value):
        return True
    if "_" in value and ("gh" in value or "github_pat_" in value or "lin_" in value):
        return True
    if "eyJ" in value or "AKIA" in value or "ASIA" in value:
        return True
    low = value.lower()
    return "pass" in low or "pwd" in low or "secret" in low or "token" in low or "key" in low or "bearer" in low or "basic" in low
_URL_CREDS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
# The first octet starts with a digit class and checks what precedes it afterwards: a pattern
# that opens with a lookbehind gets no first-character scan from the regex engine and runs ~3×
# slower. Same language as ``(?<![\w.])(?:OCTET\.){3}OCTET`` (a test compares the two).
_IPV4 = re.compile(
    r"\d(?<![\w.]\d)(?:(?<=1)\d\d|(?<=2)[0-4]\d|(?<=2)5[0-5]|\d?)\."
    rf"(?:{_OCTET}\.){{2}}{_OCTET}(?![\w]|\.\d)"
)
# Gates that start with a literal character: the regex engine jumps between those characters.
_IPV4_GATE = re.compile(r"\.\d{1,3}\.\d{1,3}\b")
_IPV6_GATE = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])")


def _ipv6(m: re.Match) -> str | None:
    text = m.group(0).split("%", 1)[0]
    if len(text) < 3:
        return None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return "<ip>"


@dataclass
class Redactor:
    """Redacts strings according to the spec's ``dataset.redaction``; counts what it replaced."""

    secrets: bool = True
    url_credentials: bool = True
    emails: bool = True
    ips: bool = True
    extra_patterns: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._extra = [re.compile(p) for p in self.extra_patterns]

    @classmethod
    def from_spec(cls, spec: Any) -> "Redactor":
        """From a :class:`sre_llm.spec.model.RedactionSpec`."""
        return cls(spec.secrets, spec.url_credentials, spec.emails, spec.ips, list(spec.extra_patterns))

    def text(self, value: str) -> str:
        """``value`` with everything enabled redacted; counts go to :attr:`counts`."""
        if self.url_credentials and "://" in value and "@" in value:
            value, n = _URL_CREDS.subn(r"\1<credentials>@", value)
            self.counts["url_credentials"] += n
        if self.secrets and _may_hold_secret(value):
            value, n = _SECRET.subn("<secret>", value)
            self.counts["secrets"] += n
            value, n = _KEYED.subn(r"\1<secret>", value)
            self.counts["secrets"] += n
        if self.emails and "@" in value:
            value, n = _EMAIL.subn("<email>", value)
            self.counts["emails"] += n
        if self.ips:
            if _IPV4_GATE.search(value):
                value, n = _IPV4.subn("<ip>", value)
                self.counts["ips"] += n
            if _IPV6_GATE.search(value):
                value = self._sub_counted(_IPV6_CANDIDATE, _ipv6, value, "ips")
        for pattern in self._extra:
            value, n = pattern.subn("<redacted>", value)
            self.counts["extra_patterns"] += n
        return value

    def _sub_counted(self, pattern: re.Pattern, fn: Callable[[re.Match], str | None], value: str, kind: str) -> str:
        def repl(m: re.Match) -> str:
            out = fn(m)
            if out is None:
                return m.group(0)
            self.counts[kind] += 1
            return out

        return pattern.sub(repl, value)

    def mapping(self, values: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``values`` with every string value, however deeply nested, redacted."""
        return {k: self.value(v) for k, v in values.items()}

    def value(self, v: Any) -> Any:
        """Any JSON value, strings redacted (keys are left alone)."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return self.mapping(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def totals(self) -> dict[str, int]:
        """Counts per kind, every enabled kind present (zero included) for the dataset card."""
        kinds = [k for k, on in (("secrets", self.secrets), ("url_credentials", self.url_credentials),
                                 ("emails", self.emails), ("ips", self.ips),
                                 ("extra_patterns", bool(self._extra))) if on]
        return {k: int(self.counts.get(k, 0)) for k in kinds}
