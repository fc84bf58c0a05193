"""The action catalog: agent-sre's seven remediation LambdaFunctions and their parameters.

One place, plain dicts, used by the dataset (labels are checked against it), the evaluator
(a right function with wrong parameters is scored as such) and the output guard. The entries are
read off the handlers of the real LambdaFunction manifests (``lambdafunctions/*.yaml`` in the
homelab repository that runs agent-sre); ``tests/test_dataset_catalog.py`` checks that they agree
with copies of those files, so a handler that changes fails the tests rather than the model.

``none`` is the extra choice "no remediation": alerts that needed no action teach the model not
to act, which the false-positive gate measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

NONE = "none"


@dataclass(frozen=True)
class Param:
    """One handler parameter: ``event.get(name[, default])`` in the handler."""

    type: str  # "string" or "integer"
    required: bool
    description: str
    default: Any = None  # what the handler uses when the parameter is absent
    choices: tuple[str, ...] = ()  # allowed values when the handler branches on them
    minimum: int | None = None


@dataclass(frozen=True)
class Action:
    """A remediation the agent can run: a LambdaFunction in the ``ai`` namespace."""

    name: str
    title: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)
    # Groups of which at least one parameter must be given (pod-check-status: name or selector).
    one_of: tuple[tuple[str, ...], ...] = ()

    @property
    def required(self) -> list[str]:
        return [k for k, p in self.params.items() if p.required]


_NAME = "name"
_NS_REQUIRED = Param("string", True, "Namespace (required)")
_NS_FLUX = Param("string", False, "Namespace of the Flux object", default="flux-system")

ACTIONS: dict[str, Action] = {
    "check-pvc-status": Action(
        "check-pvc-status",
        "Check PVC Status",
        "Check PVC status and usage.",
        {
            _NAME: Param("string", False, "PVC name (optional, if not provided checks all in namespace)"),
            "namespace": _NS_REQUIRED,
        },
    ),
    "flux-reconcile-gitrepository": Action(
        "flux-reconcile-gitrepository",
        "Flux Reconcile GitRepository",
        "Reconcile a Flux GitRepository source (flux reconcile source git).",
        {_NAME: Param("string", True, "GitRepository name (required)"), "namespace": _NS_FLUX},
    ),
    "flux-reconcile-helmrelease": Action(
        "flux-reconcile-helmrelease",
        "Flux Reconcile HelmRelease",
        "Reconcile a Flux HelmRelease (flux reconcile helmrelease).",
        {_NAME: Param("string", True, "HelmRelease name (required)"), "namespace": _NS_FLUX},
    ),
    "flux-reconcile-kustomization": Action(
        "flux-reconcile-kustomization",
        "Flux Reconcile Kustomization",
        "Reconcile Flux Kustomization resource.",
        {_NAME: Param("string", True, "Kustomization name (required)"), "namespace": _NS_FLUX},
    ),
    "pod-check-status": Action(
        "pod-check-status",
        "Pod Check Status",
        "Check pod status and return details.",
        {
            # The docstring says "required", but the handler accepts a selector instead: one_of.
            _NAME: Param("string", False, "Pod name (required unless selector is given)"),
            "namespace": _NS_REQUIRED,
            "selector": Param("string", False, "Label selector (optional, if name not provided)"),
        },
        one_of=((_NAME, "selector"),),
    ),
    "pod-restart": Action(
        "pod-restart",
        "Pod Restart",
        "Restart a pod or deployment using Kubernetes API.",
        {
            _NAME: Param("string", True, "Pod or deployment name (required)"),
            # The docstring says required; the handler falls back to "ai". The model always names
            # it, so that a restart never lands in the agent's own namespace by accident.
            "namespace": Param("string", True, "Namespace (required)", default="ai"),
            "type": Param("string", False, "'pod' or 'deployment'", default="pod", choices=("pod", "deployment")),
        },
    ),
    "scale-deployment": Action(
        "scale-deployment",
        "Scale Deployment",
        "Scale a deployment.",
        {
            _NAME: Param("string", True, "Deployment name (required)"),
            "namespace": _NS_REQUIRED,
            "replicas": Param("integer", True, "Number of replicas (required)", minimum=0),
        },
    ),
}

#: Every answer the model may give: the seven functions and ``none``.
FUNCTION_NAMES: tuple[str, ...] = (*sorted(ACTIONS), NONE)


def is_known(name: str) -> bool:
    """True for a catalog function or ``none``."""
    return name == NONE or name in ACTIONS


def validate_parameters(name: str, params: Any) -> list[str]:
    """Problems with calling ``name`` with ``params`` (empty when the call is valid).

    ``none`` takes no parameters. Messages are one short line each and name the parameter.
    """
    if name == NONE:
        if params not in ({}, None):
            return ["none takes no parameters"]
        return []
    action = ACTIONS.get(name)
    if action is None:
        return [f"unknown LambdaFunction {name!r} (known: {', '.join(FUNCTION_NAMES)})"]
    if type(params) is not dict and not isinstance(params, Mapping):  # the ABC check is slow
        return [f"{name}: parameters must be a JSON object (got {type(params).__name__})"]
    problems: list[str] = []
    for key in params:
        if key not in action.params:
            problems.append(f"{name}: unknown parameter {key!r} (known: {', '.join(action.params)})")
    for key, spec in action.params.items():
        if key not in params:
            if spec.required:
                problems.append(f"{name}: missing required parameter {key!r}")
            continue
        problems.extend(_check_value(name, key, spec, params[key]))
    for group in action.one_of:
        if not any(k in params for k in group):
            problems.append(f"{name}: needs one of {', '.join(repr(k) for k in group)}")
    return problems


def _check_value(fn: str, key: str, spec: Param, value: Any) -> list[str]:
    if spec.type == "integer":
        # bool is an int in Python; JSON true is not a replica count.
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{fn}: parameter {key!r} must be an integer (got {value!r})"]
        if spec.minimum is not None and value < spec.minimum:
            return [f"{fn}: parameter {key!r} must be >= {spec.minimum} (got {value})"]
        return []
    if not isinstance(value, str) or not value.strip():
        return [f"{fn}: parameter {key!r} must be a non-empty string (got {value!r})"]
    if spec.choices and value not in spec.choices:
        return [f"{fn}: parameter {key!r} must be one of {', '.join(spec.choices)} (got {value!r})"]
    return []


def as_dict() -> dict[str, Any]:
    """The catalog as JSON-ready data (for docs, the evaluator's report and ``dataset show``)."""
    return {
        name: {
            "title": a.title,
            "description": a.description,
            "parameters": {
                k: {key: val for key, val in vars(p).items() if val not in (None, ())} for k, p in a.params.items()
            },
            **({"one_of": [list(g) for g in a.one_of]} if a.one_of else {}),
        }
        for name, a in ACTIONS.items()
    }
