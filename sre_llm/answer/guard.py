"""The output guard: the only way a model's text becomes an action (evaluation and serving).

An answer is turned into an action only when every check passes; anything else becomes
``none`` with a one-line reason. The checks, in order:

1. the text is at most ``max_output_chars`` long and parses (:func:`parse_output`);
2. the function is a catalog name, byte for byte (a homoglyph ``pod-rеstart`` is unknown);
3. the parameters validate against the catalog (:func:`validate_parameters`);
4. string values are plain Kubernetes names: ASCII, DNS-1123 for ``name`` (253) and
   ``namespace`` (63), a conservative label-selector alphabet for ``selector``; ``replicas``
   between ``min_replicas`` (1: scaling to zero is an outage) and ``max_replicas``;
5. mutating actions (restart, scale) never target a protected namespace (``kube-system``…);
6. with the alert at hand (serving always has it), every string value is *grounded*: it equals
   one of the alert's label values or the parameter's catalog default, and an integer appears as
   a number in the alert's text. Labels are what agent-sre's own ``lambda_parameters`` templates
   copy; free text in annotations is where injected instructions live, so a target named only
   there is refused.

With the alert at hand and a model that answers with label references (``labelref-v1``), the
references are expanded with the alert's labels before checks 3-6 (:func:`expand_references`);
a reference to a label the alert lacks is refused, never guessed. The decision carries the real
values, so what is served is what the guard checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sre_llm.answer.format import ParseError, alert_from_input, parse_output  # noqa: F401  (alert_from_input: re-exported)
from sre_llm.answer.references import (
    LABELREF,
    UnknownReference,
    check_format,
    expand_references,
)
from sre_llm.catalog import ACTIONS, NONE, validate_parameters

#: Actions that change the cluster (the others read state or re-apply what Git already says).
MUTATING = frozenset({"pod-restart", "scale-deployment"})

_DNS_SUBDOMAIN = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_DNS_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_SELECTOR = re.compile(r"\A[A-Za-z0-9._/=!,()\- ]+\Z")


@dataclass(frozen=True)
class Policy:
    """Limits the guard applies beyond the catalog's schema."""

    max_output_chars: int = 2048
    max_replicas: int = 50
    # Scaling to zero is an outage, never a remediation the agent may choose on its own.
    min_replicas: int = 1
    protected_namespaces: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Decision:
    """What will run: a catalog function and its parameters, or ``none`` and why."""

    function: str
    parameters: dict[str, Any]
    reason: str | None = None  # set when the model's proposal was refused
    proposed: str | None = None  # the function the model named (None when it did not parse)

    @property
    def acts(self) -> bool:
        return self.function != NONE

    @property
    def refused(self) -> bool:
        return self.reason is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse(reason: str, proposed: str | None = None) -> Decision:
    return Decision(NONE, {}, reason, proposed)


def guard(
    output: Any,
    labels: Mapping[str, Any] | None = None,
    annotations: Mapping[str, Any] | None = None,
    policy: Policy = DEFAULT_POLICY,
    answer_format: str = LABELREF,
) -> Decision:
    """Decide what a model answer may do. ``labels`` (and ``annotations``) are the alert's;
    without them the grounding check (6) is skipped, which only tests of the guard itself do.

    ``answer_format`` is the one the model was trained on (its ``run.json`` / lineage says):
    with ``labelref-v1`` references are expanded with ``labels`` first; with ``literal-v1`` a
    reference is just text and fails the value checks. A literal answer reads the same in both.
    """
    check_format(answer_format)
    if not isinstance(output, str):
        return _refuse(f"answer is not text ({type(output).__name__})")
    if len(output) > policy.max_output_chars:
        return _refuse(f"answer is {len(output)} characters (limit {policy.max_output_chars})")
    try:
        fn, params = parse_output(output)
    except ParseError as exc:
        return _refuse(f"unparseable answer: {exc}")
    if fn == NONE:
        return Decision(NONE, {}, None if not params else "none takes no parameters (ignored)", NONE)
    if fn not in ACTIONS:
        hint = " (contains non-ASCII characters)" if not fn.isascii() else ""
        return _refuse(f"unknown LambdaFunction {fn!a}{hint}", fn)
    if answer_format == LABELREF and labels is not None:
        try:
            params = expand_references(params, labels, fn)
        except UnknownReference as exc:
            return _refuse(f"{fn}: {exc}", fn)
    problems = validate_parameters(fn, params)
    if problems:
        return _refuse("; ".join(problems), fn)
    problems = _value_problems(fn, params, policy)
    if not problems and labels is not None:
        problems = _grounding_problems(fn, params, labels, annotations or {})
    if problems:
        return _refuse("; ".join(problems), fn)
    return Decision(fn, dict(params), None, fn)


def _value_problems(fn: str, params: Mapping[str, Any], policy: Policy) -> list[str]:
    problems = []
    for key, value in params.items():
        if isinstance(value, str):
            if not value.isascii() or not value.isprintable():
                problems.append(f"{fn}: parameter {key!r} has non-ASCII or control characters ({value!a})")
            elif key == "namespace" and (len(value) > 63 or not _DNS_LABEL.match(value)):
                problems.append(f"{fn}: parameter 'namespace' is not a Kubernetes namespace name ({value!r})")
            elif key == "name" and (len(value) > 253 or not _DNS_SUBDOMAIN.match(value)):
                problems.append(f"{fn}: parameter 'name' is not a Kubernetes object name ({value!r})")
            elif key == "selector" and (len(value) > 256 or not _SELECTOR.match(value)):
                problems.append(f"{fn}: parameter 'selector' is not a label selector ({value!r})")
        elif key == "replicas" and isinstance(value, int) and value > policy.max_replicas:
            problems.append(f"{fn}: replicas {value} is above the limit of {policy.max_replicas}")
        elif key == "replicas" and isinstance(value, int) and value < policy.min_replicas:
            problems.append(f"{fn}: replicas {value} is below the minimum of {policy.min_replicas}")
    ns_spec = ACTIONS[fn].params.get("namespace")
    ns = params.get("namespace", ns_spec.default if ns_spec else None)
    if fn in MUTATING and ns in policy.protected_namespaces:
        problems.append(f"{fn}: namespace {ns!r} is protected from mutating actions")
    return problems


def _grounding_problems(fn: str, params: Mapping[str, Any], labels: Mapping[str, Any], annotations: Mapping[str, Any]) -> list[str]:
    label_values = {str(v) for v in labels.values()}
    text = " ".join(str(v) for v in (*labels.values(), *annotations.values()))
    problems = []
    for key, value in params.items():
        spec = ACTIONS[fn].params[key]
        if spec.choices or (not spec.required and value == spec.default):
            continue  # a choice of the handler's (pod/deployment), or what it does anyway
        if isinstance(value, str) and value not in label_values:
            problems.append(f"{fn}: parameter {key!r} value {value!r} is not a label of the alert")
        elif isinstance(value, int) and not re.search(rf"(?<![\d.]){value}(?!\.?\d)", text):
            problems.append(f"{fn}: parameter {key!r} value {value} does not appear in the alert")
    return problems
