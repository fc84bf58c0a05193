"""Flagger rendering (engine flagger, the default) and the gateway's safety arguments, validated
against the real CRD schemas: Flagger's Canary (datree catalog) and MetricTemplate (Flagger's own
crd.yaml at v1.44.0), both copied into tests/fixtures/schemas/flagger.app with their source."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from sre_llm.deploy.schemacheck import unknown_fields
from sre_llm.deploy.yamldoc import _yaml
from sre_llm.errors import BadInput
from sre_llm.render.k8s import render_manifests
from sre_llm.serve.safety import parse_allow, parse_rate_limit
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "tests/fixtures/schemas/flagger.app"
SPEC = (ROOT / "tests/deploy_support.py").read_text().split('SPEC = """\\\n')[1].split('"""')[0]


def _render(tmp_path: Path, rollout_extra: str = "", engine: str = "flagger") -> dict[str, list[dict]]:
    text = SPEC.format(version="0.2.0").replace("engine: gitops", f"engine: {engine}")
    if rollout_extra:
        text = text.replace("      shadow: null\n", rollout_extra)
    (tmp_path / "spec.yaml").write_text(text)
    files = render_manifests(load_spec(tmp_path / "spec.yaml"))
    return {Path(f.path).name: [d for d in _yaml().load_all(f.text) if d] for f in files if "/k8s/" in f.path}


def _valid(doc: dict, schema_file: str) -> None:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    jsonschema.Draft4Validator(schema).validate(doc)
    assert unknown_fields(doc, schema) == []


def test_flagger_canary_and_metric_templates_validate(tmp_path: Path) -> None:
    docs = _render(tmp_path)
    canary, = docs["canary.yaml"]
    _valid(canary, "canary_v1beta1.json")
    spec = canary["spec"]
    assert spec["provider"] == "knative"
    assert spec["targetRef"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "demo-model"}
    analysis = spec["analysis"]
    assert analysis["stepWeights"] == [10, 50] and analysis["threshold"] == 2
    assert {m["name"]: m["thresholdRange"] for m in analysis["metrics"]} == {
        "error-rate": {"max": 5.0}, "latency-p95": {"max": 500}, "remediation-success-rate": {"min": 90.0}}
    assert {m["templateVariables"]["revision"] for m in analysis["metrics"]} == {"demo-model-v0-2-0"}
    templates = docs["metrictemplates.yaml"]
    assert [t["metadata"]["name"] for t in templates] == ["demo-model-error-rate", "demo-model-latency-p95",
                                                          "demo-model-remediation-success-rate"]
    for t in templates:
        _valid(t, "metrictemplate_v1beta1.json")
        assert "$" not in t["spec"]["query"] and "{{ variables.revision }}" in t["spec"]["query"]
    assert templates[0]["spec"]["query"] == (
        '100 * (sum(demo_requests_total{revision="{{ variables.revision }}",code="500"}) or vector(0)) / '
        '(sum(demo_requests_total{revision="{{ variables.revision }}"}))')
    serving, = docs["serving.yaml"]
    assert "traffic" not in serving["spec"]  # Flagger owns it
    assert set(docs["kustomization.yaml"][0]["resources"]) >= {"canary.yaml", "metrictemplates.yaml"}


def test_gitops_keeps_the_pinned_split_and_shadows_to_the_challenger_tag(tmp_path: Path) -> None:
    docs = _render(tmp_path, "      shadow: {duration: 1h}\n", engine="gitops")
    assert "canary.yaml" not in docs
    serving, = docs["serving.yaml"]
    assert serving["spec"]["traffic"][0]["revisionName"] == "demo-model-v0-2-0"
    args = serving["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--shadow") + 1] == "http://challenger-demo-model.ai.svc.cluster.local"
    assert args[args.index("--kill-switch") + 1] == "/etc/sre-llm/killswitch"
    assert [parse_rate_limit(args[i + 1]).max for i, a in enumerate(args) if a == "--rate-limit"] == [3, 3]


def test_policy_from_the_spec_reaches_the_gateway_args(tmp_path: Path) -> None:
    text = SPEC.format(version="0.2.0").replace(
        "    rollout:\n", "    safety:\n      policy:\n        allowed_functions: {payments: [pod-check-status], '*': []}\n"
        "        rate_limits: [{function: pod-restart, max: 1, per: 30m}]\n    rollout:\n")
    (tmp_path / "spec.yaml").write_text(text)
    files = render_manifests(load_spec(tmp_path / "spec.yaml"))
    serving = next(_yaml().load(f.text) for f in files if f.path.endswith("serving.yaml"))
    args = serving["spec"]["template"]["spec"]["containers"][0]["args"]
    allows = [parse_allow(args[i + 1]) for i, a in enumerate(args) if a == "--allow"]
    assert allows == [("*", ()), ("payments", ("pod-check-status",))]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--rate-limit"] == ["pod-restart=1/30m"]


def test_unknown_function_in_the_policy_is_refused(tmp_path: Path) -> None:
    text = SPEC.format(version="0.2.0").replace(
        "    rollout:\n", "    safety:\n      policy:\n        allowed_functions: {payments: [pod-rstart]}\n    rollout:\n")
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(BadInput) as err:
        load_spec(tmp_path / "spec.yaml")
    assert str(err.value).endswith(
        "spec.deployment.safety.policy.allowed_functions.payments[0]: must be one of check-pvc-status, "
        "flux-reconcile-gitrepository, flux-reconcile-helmrelease, flux-reconcile-kustomization, pod-check-status, "
        "pod-restart, scale-deployment (got 'pod-rstart'; did you mean pod-restart?)")
