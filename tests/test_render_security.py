"""Least privilege in the rendered cluster objects: every object validated against the real
Kubernetes (v1.33, strict) or Istio schema; each ServiceAccount's rights compared with what the
code it runs calls (a scan of that code, so the test fails when the code starts calling more);
the NetworkPolicies evaluated by Kubernetes' rules for who may reach whom; PSA labels only on
the namespace sre-llm owns; the collector workload and its Alertmanager receiver (checked by
the real ``amtool``)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from sre_llm import api
from sre_llm.deploy.schemacheck import unknown_fields
from sre_llm.render import collector, security
from sre_llm.render.security import API_RULES, COMPONENT_CODE, COMPONENTS, Rule
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "schemas"
CORE = {
    ("v1", "Namespace"): "namespace-v1", ("v1", "ServiceAccount"): "serviceaccount-v1",
    ("v1", "Service"): "service-v1", ("apps/v1", "StatefulSet"): "statefulset-apps-v1",
    ("rbac.authorization.k8s.io/v1", "Role"): "role-rbac-v1",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebinding-rbac-v1",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicy-networking-v1",
}


def _schema(doc: dict) -> dict | None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CORE:
        return json.loads((FIX / "core" / f"{CORE[key]}.json").read_text())
    if key == ("security.istio.io/v1", "AuthorizationPolicy"):
        return json.loads((FIX / "security.istio.io" / "authorizationpolicy_v1.json").read_text())
    return None


def _spec(tmp_path: Path, base: str = "specs/tiny-cpu.yaml", **deployment: object) -> Path:
    doc = yaml.safe_load((ROOT / base).read_text())
    for key, value in deployment.items():
        doc["spec"].setdefault("deployment", {})[key] = value
    out = tmp_path / Path(base).name
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _objects(spec: Path) -> list[dict]:
    out = []
    for f in api.render_files([str(spec)]):
        if "/k8s/" in f.path and f.path.endswith(".yaml"):
            out += [d for d in yaml.safe_load_all(f.text) if d]
    return out


def _by_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


FULL = dict(create_namespace=True, mesh="istio", gateway_token={"secret": "gw-token"},
            collector={"token": {"secret": "collector-token", "key": "bearer"}, "storage_class": "fast"},
            rollout={"engine": "flagger"})  # the shipped tiny spec runs gitops; Flagger's webhooks are on the collector


def test_every_security_and_collector_object_validates(tmp_path: Path) -> None:
    seen = set()
    for spec in [*sorted(ROOT.glob("specs/*.yaml")), _spec(tmp_path, **FULL)]:
        for doc in _objects(spec):
            schema = _schema(doc)
            if schema is None:
                continue  # Knative, Flux, Prometheus objects: tests/test_deploy_manifests.py
            errors = [f"{'.'.join(map(str, e.path))}: {e.message}"
                      for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
            assert errors == [], f"{doc['kind']} {doc['metadata']['name']}: {errors}"
            assert unknown_fields(doc, schema) == [], doc["kind"]
            seen.add(doc["kind"])
    assert seen == {"Namespace", "ServiceAccount", "NetworkPolicy", "Service", "StatefulSet", "AuthorizationPolicy"}


def test_a_role_renders_only_the_rules_given_and_validates(tmp_path: Path) -> None:
    release = load_spec(_spec(tmp_path)).release
    rule = Rule("", "configmaps", ("get", "list", "watch"), ("{name}-killswitch",))
    sa = security.service_account(release, "serving", (rule,))
    role, binding = security.rbac(release, "serving", (rule,))
    for doc in (sa, role, binding):
        assert jsonschema.Draft202012Validator(_schema(doc)).is_valid(doc), doc["kind"]
    assert sa["automountServiceAccountToken"] is True
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
                              "resourceNames": ["sre-remediation-tiny-killswitch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": sa["metadata"]["namespace"]}]
    assert security.rbac(release, "serving", ()) == []


# ── what the code calls ─────────────────────────────────────────────────────────────────────────

_KUBECTL_VERBS = {"get": ("get", "list"), "apply": ("get", "create", "patch"), "create": ("create",),
                  "delete": ("delete",), "patch": ("patch",), "logs": ("get",), "wait": ("get", "watch"),
                  "rollout": ("get", "patch"), "scale": ("patch",), "exec": ("create",)}
_API_PATH = re.compile(r"/api/v1/namespaces/[^/]+/([a-z]+)|/apis/([a-z0-9.-]+)/v[0-9a-z]+/namespaces/[^/]+/([a-z]+)")


def _py_files(paths: tuple[str, ...]) -> list[Path]:
    out = []
    for p in paths:
        path = ROOT / p
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def api_calls(paths: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(api group, resource, verb) the code calls: kubectl argv lists, Kubernetes API paths in
    strings, any use of the kubernetes client (reported as ``*``, which no table can grant)."""
    found: set[tuple[str, str, str]] = set()
    for path in _py_files(paths):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                    found.add(("*", "*", f"kubernetes client in {path.relative_to(ROOT)}"))
            if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                    and node.elts[0].value == "kubectl":
                args = [e.value if isinstance(e, ast.Constant) else None for e in node.elts[1:3]]
                verb, resource = (args + [None, None])[:2]
                if verb is None or resource is None or verb not in _KUBECTL_VERBS:
                    found.add(("*", "*", f"kubectl call not understood in {path.relative_to(ROOT)}:{node.lineno}"))
                    continue
                group, _, res = resource.partition(".")[::-1] if "." in resource else ("", "", resource)
                for v in _KUBECTL_VERBS[verb]:
                    found.add((group, res.split("/")[0], v))
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for m in _API_PATH.finditer(node.value):
                    group, resource = (m.group(2) or ""), (m.group(1) or m.group(3))
                    found.add((group, resource, "watch" if "watch" in node.value else "get"))
    return found


def granted(rules: tuple[Rule, ...]) -> set[tuple[str, str, str]]:
    return {(r.api_group, r.resource, v) for r in rules for v in r.verbs}


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_service_account_may_do_exactly_what_its_code_calls(component: str) -> None:
    used = api_calls(COMPONENT_CODE[component])
    assert used <= granted(API_RULES[component]), f"{component} calls the Kubernetes API beyond its Role: {used}"
    # Read verbs imply list/watch only where the table says so; nothing granted that is never called.
    unused = {(g, r) for g, r, _ in granted(API_RULES[component])} - {(g, r) for g, r, _ in used}
    assert not unused, f"{component} is granted {unused} that its code never touches"


def test_the_scan_sees_kubectl_and_api_paths(tmp_path: Path) -> None:
    # The scanner must be able to fail: a file that calls kubectl and an API path is caught.
    probe = ROOT / "tests" / "fixtures" / "security_scan_probe.py"
    assert api_calls((str(probe.relative_to(ROOT)),)) == {
        ("", "configmaps", "watch"), ("", "pods", "get"), ("", "pods", "list"), ("kubeflow.org", "pytorchjobs", "create")}


def test_no_workload_gets_a_token_it_does_not_need(tmp_path: Path) -> None:
    objs = _objects(_spec(tmp_path, **FULL))
    sas = _by_kind(objs, "ServiceAccount")
    assert set(sas) == {"sre-remediation-tiny-serving", "sre-remediation-tiny-collector", "sre-remediation-tiny-rollout"}
    assert all(sa["automountServiceAccountToken"] is False for sa in sas.values())
    assert not _by_kind(objs, "Role") and not _by_kind(objs, "ClusterRole") and not _by_kind(objs, "ClusterRoleBinding")
    pod = _by_kind(objs, "Service")["sre-remediation-tiny"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sre-remediation-tiny-serving"
    sts = _by_kind(objs, "StatefulSet")["sre-remediation-tiny-collector"]["spec"]["template"]["spec"]
    assert sts["serviceAccountName"] == "sre-remediation-tiny-collector" and sts["automountServiceAccountToken"] is False


def test_serving_is_cluster_local_and_takes_the_token_from_a_secret(tmp_path: Path) -> None:
    svc = next(o for o in _objects(_spec(tmp_path, **FULL)) if o["kind"] == "Service" and "template" in o["spec"])
    assert svc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    gateway = next(c for c in svc["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway")
    assert {"name": "SRE_LLM_GATEWAY_TOKEN", "valueFrom": {"secretKeyRef": {"name": "gw-token", "key": "token"}}} in gateway["env"]
    plain = next(o for o in _objects(ROOT / "specs" / "tiny-cpu.yaml") if o["kind"] == "Service" and "template" in o["spec"])
    assert all("SRE_LLM_GATEWAY_TOKEN" not in json.dumps(c) for c in plain["spec"]["template"]["spec"]["containers"])


# ── who may reach whom ──────────────────────────────────────────────────────────────────────────


def _selects(selector: dict, labels: dict) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] != "In":
            raise AssertionError(f"operator {e['operator']} not modelled")
    return True


def allowed(policies: list[dict], ns: str, pod: dict, src_ns: str, src: dict, port: int) -> bool:
    """Kubernetes' ingress semantics: a pod no policy selects admits everything; otherwise one
    rule of one selecting policy must admit the peer and the port."""
    selecting = [p for p in policies if p["metadata"]["namespace"] == ns and _selects(p["spec"]["podSelector"], pod)
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    ns_labels = {"kubernetes.io/metadata.name": src_ns}
    for p in selecting:
        for rule in p["spec"].get("ingress") or []:
            ports = [x["port"] for x in rule.get("ports") or []]
            if ports and port not in ports:
                continue
            for peer in rule.get("from") or [{}]:
                in_ns = _selects(peer["namespaceSelector"], ns_labels) if "namespaceSelector" in peer else src_ns == ns
                by_pod = _selects(peer["podSelector"], src) if "podSelector" in peer else True
                if not peer or (in_ns and by_pod):
                    return True
    return False


def test_network_policies_admit_only_the_data_plane_alertmanager_and_the_gateway(tmp_path: Path) -> None:
    objs = _objects(_spec(tmp_path, **FULL))
    pols = list(_by_kind(objs, "NetworkPolicy").values())
    assert "default-deny-ingress" in {p["metadata"]["name"] for p in pols}
    serving = {"serving.knative.dev/service": "sre-remediation-tiny", "app": "x"}
    coll = _by_kind(objs, "StatefulSet")["sre-remediation-tiny-collector"]["spec"]["template"]["metadata"]["labels"]
    other = {"app": "something-else"}
    ns = "sre-llm"
    # Serving: the activator / ingress yes, the agent's namespace or anything else no.
    assert allowed(pols, ns, serving, "knative-serving", {}, 8012)
    assert allowed(pols, ns, serving, "kourier-system", {}, 8012)
    assert not allowed(pols, ns, serving, "ai", {"app": "agent-sre"}, 8080)
    assert not allowed(pols, ns, serving, ns, other, 8080)
    assert allowed(pols, ns, serving, "monitoring", {}, 9091) and not allowed(pols, ns, serving, "monitoring", {}, 8000)
    # Collector: Alertmanager's namespace and the serving pods, on its port only.
    assert allowed(pols, ns, coll, "monitoring", {"app": "alertmanager"}, 9095)
    assert allowed(pols, ns, coll, ns, serving, 9095)
    assert not allowed(pols, ns, coll, ns, other, 9095)
    assert not allowed(pols, ns, coll, "ai", {"app": "agent-sre"}, 9095)
    assert not allowed(pols, ns, coll, "monitoring", {}, 22)
    # Anything else in the namespace: the namespace-wide default deny.
    assert not allowed(pols, ns, other, "default", {}, 80)


def test_network_namespaces_come_from_the_spec(tmp_path: Path) -> None:
    spec = _spec(tmp_path, network={"knative_namespaces": ["knative-serving", "istio-system"],
                                    "alertmanager_namespace": "observability"}, collector={})
    pols = list(_by_kind(_objects(spec), "NetworkPolicy").values())
    serving = {"serving.knative.dev/service": "sre-remediation-tiny"}
    coll = collector.selector(load_spec(spec).release)
    assert allowed(pols, "sre-llm", serving, "istio-system", {}, 8012)
    assert not allowed(pols, "sre-llm", serving, "kourier-system", {}, 8012)
    assert allowed(pols, "sre-llm", coll, "observability", {}, 9095)
    assert "default-deny-ingress" not in {p["metadata"]["name"] for p in pols}  # the namespace is not ours


def test_authorization_policies_only_with_a_mesh(tmp_path: Path) -> None:
    assert not _by_kind(_objects(_spec(tmp_path, collector={})), "AuthorizationPolicy")
    aps = _by_kind(_objects(_spec(tmp_path, **FULL)), "AuthorizationPolicy")
    assert set(aps) == {"sre-remediation-tiny-serving", "sre-remediation-tiny-collector"}
    rules = aps["sre-remediation-tiny-collector"]["spec"]["rules"]
    assert {"source": {"principals": ["cluster.local/ns/sre-llm/sa/sre-remediation-tiny-serving"]}} in rules[1]["from"]


def test_pod_security_restricted_on_our_namespace_never_the_agents(tmp_path: Path) -> None:
    for manage in ("patch", "own"):
        objs = _objects(_spec(tmp_path, create_namespace=True, agent={"manage": manage}))
        namespaces = _by_kind(objs, "Namespace")
        assert set(namespaces) == {"sre-llm"}
        labels = namespaces["sre-llm"]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == security.PSA_VERSION
        assert all(o.get("metadata", {}).get("namespace") != "ai" for o in objs if o["kind"] != "LambdaAgent")


# ── the collector workload ──────────────────────────────────────────────────────────────────────


def test_collector_only_where_there_is_something_to_collect(tmp_path: Path) -> None:
    assert not _by_kind(_objects(ROOT / "specs" / "tiny-cpu.yaml"), "StatefulSet")
    assert "sre-remediation-qwen2-7b-collector" in _by_kind(_objects(ROOT / "specs" / "qwen2-7b-qlora.yaml"), "StatefulSet")


def test_collector_runs_restricted_with_its_store_and_token(tmp_path: Path) -> None:
    sts = _by_kind(_objects(_spec(tmp_path, **FULL)), "StatefulSet")["sre-remediation-tiny-collector"]
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] + c["args"] == ["sre-llm", "collect", "serve", "--store", "/data/alerts", "--listen",
                                        "0.0.0.0:9095", "--token", "env:SRE_LLM_COLLECT_TOKEN",
                                        # engine flagger: the webhook gates judge by the mounted spec
                                        "--rollout-spec", "/etc/sre-llm/rollout/spec.yaml"]
    assert c["env"] == [{"name": "SRE_LLM_COLLECT_TOKEN",
                         "valueFrom": {"secretKeyRef": {"name": "collector-token", "key": "bearer"}}}]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["readinessProbe"]["httpGet"]["path"] == c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast" and "app.kubernetes.io/version" not in claim["metadata"]["labels"]


def test_the_collector_command_is_a_real_cli_command() -> None:
    proc = subprocess.run(["sre-llm" if shutil.which("sre-llm") else str(ROOT / ".venv/bin/sre-llm"),
                           "collect", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for option in ("--store", "--listen", "--token"):
        assert option in proc.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (Debian prometheus-alertmanager) not installed")
def test_alertmanager_receiver_snippet_is_valid_config(tmp_path: Path) -> None:
    files = {Path(f.path).name: f.text for f in api.render_files([str(_spec(tmp_path, **FULL))]) if "/alertmanager/" in f.path}
    snippet = yaml.safe_load(files["receiver.yaml"])
    config = {"route": {"receiver": "default", **snippet["route"]},
              "receivers": [{"name": "default"}, *snippet["receivers"]]}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hook = snippet["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://sre-remediation-tiny-collector.sre-llm.svc.cluster.local:9095/" and hook["send_resolved"]
    assert hook["http_config"]["authorization"]["credentials_file"].endswith("/collector-token/bearer")
