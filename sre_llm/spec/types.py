"""Constrained scalar types of the spec, each with a message a person can act on.

Errors are ``PydanticCustomError`` so the text reaches the user as written (no "Value error, "
prefix) and so a rejected secret is never echoed back.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_DURATION = re.compile(r"^([1-9]\d*)(s|m|h|d)$")
_SECRET = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:\S+)$")
_AGE_RECIPIENT = re.compile(r"^(age1[0-9a-z]{58}|ssh-(ed25519|rsa) \S+( .*)?)$")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("type", "must be {what} (got {got})", {"what": what, "got": _show(value)})
    return value


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _dns1123(value: Any) -> str:
    value = _str(value, "a DNS-1123 name")
    if len(value) > 63 or not _DNS1123.match(value):
        raise PydanticCustomError(
            "dns1123",
            "must be a DNS-1123 name: lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters (got {got})",
            {"got": repr(value)},
        )
    return value


def _semver(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise PydanticCustomError(
            "semver", "must be a semantic version such as 1.0.0, quoted (got {got})", {"got": value}
        )
    value = _str(value, "a semantic version such as 1.0.0")
    if not _SEMVER.match(value):
        raise PydanticCustomError(
            "semver", "must be a semantic version MAJOR.MINOR.PATCH such as 1.0.0 (got {got})", {"got": repr(value)}
        )
    return value


def _duration(value: Any) -> str:
    value = _str(value, "a duration such as 30m")
    if not _DURATION.match(value):
        raise PydanticCustomError(
            "duration", "must be a duration: a whole number and s, m, h or d, such as 30m (got {got})", {"got": repr(value)}
        )
    return value


def _secret_ref(value: Any) -> str:
    # Never echo the value: a user who pasted a token here must not see it in CI logs.
    if not isinstance(value, str) or not _SECRET.match(value):
        raise PydanticCustomError(
            "secret_ref",
            "must be a secret reference, env:NAME or file:PATH (a literal value is refused, "
            "and not shown, so that secrets never live in specs)",
        )
    return value


def _age_recipient(value: Any) -> str:
    value = _str(value, "an age recipient")
    if not _AGE_RECIPIENT.match(value):
        raise PydanticCustomError(
            "age_recipient", "must be an age public key (age1…) or an SSH public key (got {got})", {"got": repr(value)}
        )
    return value


def _regex(value: Any) -> str:
    value = _str(value, "a regular expression")
    if len(value) > 1000:
        raise PydanticCustomError("regex", "is {n} characters long (limit 1000)", {"n": len(value)})
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError("regex", "is not a valid regular expression: {why}", {"why": str(exc)}) from None
    from sre_llm.spec.regexcheck import catastrophic

    why = catastrophic(value)
    if why:
        raise PydanticCustomError(
            "regex",
            "can backtrack catastrophically ({why}): a long line that does not match takes exponential "
            "time; make the inner repetition possessive (a++) or atomic ((?>a+)), or drop one of the two",
            {"why": why},
        )
    return value


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _k8s_labels(value: Any) -> dict[str, str]:
    """Kubernetes label keys (``[prefix/]name``) and values, as the API server checks them:
    rendering an invalid one would only fail later, at apply time, in the cluster."""
    if not isinstance(value, dict):
        raise PydanticCustomError("labels", "must be a mapping of label keys to values (got {got})", {"got": _show(value)})
    for key, val in value.items():
        if not isinstance(key, str):
            raise PydanticCustomError("labels", "label key {key} must be text", {"key": _show(key)})
        prefix, _, name = key.rpartition("/")
        if not name or len(name) > 63 or not _LABEL_NAME.match(name) or (
                "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))):
            raise PydanticCustomError(
                "labels",
                "label key {key} is not a Kubernetes label key: [prefix/]name, the name at most 63 characters of "
                "letters, digits, '-', '_' and '.', starting and ending with a letter or digit; the prefix a DNS subdomain",
                {"key": repr(key)},
            )
        if not isinstance(val, str):
            raise PydanticCustomError("labels", "label {key}: value must be text, quoted (got {got})",
                                      {"key": repr(key), "got": _show(val)})
        if len(val) > 63 or not _LABEL_NAME.match(val):
            raise PydanticCustomError(
                "labels",
                "label {key}: value {val} is not a Kubernetes label value: at most 63 characters of letters, digits, "
                "'-', '_' and '.', starting and ending with a letter or digit (or empty)",
                {"key": repr(key), "val": repr(val[:80])},
            )
    return value


def duration_seconds(value: str) -> int:
    """``"30m"`` → 1800."""
    number, unit = _DURATION.match(value).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


DnsName = Annotated[str, BeforeValidator(_dns1123), Field(json_schema_extra={"pattern": _DNS1123.pattern, "maxLength": 63})]
SemVer = Annotated[str, BeforeValidator(_semver), Field(json_schema_extra={"pattern": _SEMVER.pattern})]
Duration = Annotated[str, BeforeValidator(_duration), Field(json_schema_extra={"pattern": _DURATION.pattern})]
SecretRef = Annotated[str, BeforeValidator(_secret_ref), Field(json_schema_extra={"pattern": _SECRET.pattern})]
AgeRecipient = Annotated[str, BeforeValidator(_age_recipient)]
Regex = Annotated[str, BeforeValidator(_regex)]
K8sLabels = Annotated[dict[str, str], BeforeValidator(_k8s_labels)]
