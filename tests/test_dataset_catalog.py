"""The action catalog agrees with the real agent-sre LambdaFunction handlers (fixture copies)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from sre_llm import catalog

FIXTURES = Path(__file__).parent / "fixtures" / "agent-sre" / "lambdafunctions"


def _handler(path: Path) -> tuple[dict, ast.FunctionDef]:
    doc = yaml.safe_load(path.read_text())
    code = doc["spec"]["source"]["inline"]["code"]
    fn = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == "handler")
    return doc, fn


def _event_gets(fn: ast.FunctionDef) -> dict[str, object]:
    """``event.get('x', default)`` calls → {x: default or None}."""
    found: dict[str, object] = {}
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "event"
        ):
            key = node.args[0].value
            found[key] = node.args[1].value if len(node.args) > 1 else None
    return found


def _docstring_params(fn: ast.FunctionDef) -> dict[str, str]:
    doc = ast.get_docstring(fn) or ""
    return dict(re.findall(r"^- (\w+): .*?\((.*)\)\s*$", doc, re.M))


def test_catalog_names_are_the_seven_fixture_functions():
    names = sorted(p.stem for p in FIXTURES.glob("*.yaml"))
    assert names == sorted(catalog.ACTIONS)
    assert len(names) == 7
    assert catalog.FUNCTION_NAMES == (*names, "none")
    for path in FIXTURES.glob("*.yaml"):
        doc, _ = _handler(path)
        assert doc["metadata"]["name"] == path.stem
        assert doc["kind"] == "LambdaFunction"


@pytest.mark.parametrize("name", sorted(catalog.ACTIONS))
def test_parameters_agree_with_handler(name: str):
    _, fn = _handler(FIXTURES / f"{name}.yaml")
    action = catalog.ACTIONS[name]
    gets = _event_gets(fn)
    assert set(gets) == set(action.params), "catalog parameters = the keys the handler reads"
    for key, default in gets.items():
        if default is not None:
            assert action.params[key].default == default, f"{key}: handler default {default!r}"
    docs = _docstring_params(fn)
    for key, note in docs.items():
        p = action.params[key]
        if note.startswith("required"):
            assert p.required or any(key in g for g in action.one_of), key
        elif note.startswith("optional"):
            assert not p.required, key
        elif note.startswith("default:"):
            assert not p.required and p.default == note.split(":", 1)[1].strip(), key
    source = ast.unparse(fn)
    # Handlers without a docstring state what is required in their error message.
    for key in re.findall(r"'(\w+) parameter is required'", source):
        assert action.params[key].required, key
    if name == "scale-deployment":
        assert "name, namespace, and replicas parameters are required" in source
        assert action.required == ["name", "namespace", "replicas"]
    if name == "pod-restart":
        assert "resource_type == 'deployment'" in source
        assert action.params["type"].choices == ("pod", "deployment")


def test_validate_parameters_messages():
    v = catalog.validate_parameters
    assert v("pod-restart", {"name": "web-1", "namespace": "shop", "type": "pod"}) == []
    assert v("none", {}) == []
    assert v("none", {"name": "x"}) == ["none takes no parameters"]
    assert v("pod-restart", {"namespace": "shop"}) == ["pod-restart: missing required parameter 'name'"]
    assert v("pod-restart", {"name": "a", "namespace": "b", "type": "node"}) == [
        "pod-restart: parameter 'type' must be one of pod, deployment (got 'node')"
    ]
    assert v("scale-deployment", {"name": "a", "namespace": "b", "replicas": "3"}) == [
        "scale-deployment: parameter 'replicas' must be an integer (got '3')"
    ]
    assert v("scale-deployment", {"name": "a", "namespace": "b", "replicas": True}) == [
        "scale-deployment: parameter 'replicas' must be an integer (got True)"
    ]
    assert v("scale-deployment", {"name": "a", "namespace": "b", "replicas": -1}) == [
        "scale-deployment: parameter 'replicas' must be >= 0 (got -1)"
    ]
    assert v("pod-check-status", {"namespace": "b"}) == ["pod-check-status: needs one of 'name', 'selector'"]
    assert v("pod-check-status", {"namespace": "b", "selector": "app=web"}) == []
    assert v("check-pvc-status", {"namespace": "b", "size": 1}) == [
        "check-pvc-status: unknown parameter 'size' (known: name, namespace)"
    ]
    assert v("flux-reconcile-kustomization", {"name": ""}) == [
        "flux-reconcile-kustomization: parameter 'name' must be a non-empty string (got '')"
    ]
    assert v("restart-everything", {}) == [
        "unknown LambdaFunction 'restart-everything' (known: check-pvc-status, flux-reconcile-gitrepository, "
        "flux-reconcile-helmrelease, flux-reconcile-kustomization, pod-check-status, pod-restart, "
        "scale-deployment, none)"
    ]
    assert v("pod-restart", ["a"]) == ["pod-restart: parameters must be a JSON object (got list)"]


def test_as_dict_is_json_ready():
    import json

    data = json.loads(json.dumps(catalog.as_dict()))
    assert data["scale-deployment"]["parameters"]["replicas"] == {
        "type": "integer", "required": True, "description": "Number of replicas (required)", "minimum": 0
    }
    assert data["pod-check-status"]["one_of"] == [["name", "selector"]]
