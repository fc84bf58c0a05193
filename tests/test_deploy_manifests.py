"""Rendered Kubernetes manifests: each kind validated against its real schema (copies under
tests/fixtures/), unknown fields and traffic checked beyond what the schemas check, a bad split
refused, and the tree built by kustomize and the alert rules checked by promtool when present.
(Byte-for-byte golden files are compared by tests/test_render.py for every spec.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from sre_llm import api
from sre_llm.deploy import traffic as tr
from sre_llm.deploy.schemacheck import traffic_problems, unknown_fields
from sre_llm.errors import BadInput
from sre_llm.render import k8s as mf
from sre_llm.render import pod
from sre_llm.spec.deployment import ArtifactSpec
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
SPECS = sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("tests/fixtures/specs/*.yaml"))


def _crd_schema() -> dict:
    crd = yaml.safe_load((FIX / "agent-sre" / "crd-lambdaagent.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _schemas() -> dict[tuple[str, str], tuple[str, dict]]:
    """Every schema under tests/fixtures/schemas/ by (apiVersion, kind): core kinds name theirs in
    x-kubernetes-group-version-kind; a CRD's file is <group>/<kind>_<version>.json."""
    found: dict[tuple[str, str], tuple[str, dict]] = {("lambda.knative.io/v1alpha1", "LambdaAgent"): ("draft4", _crd_schema())}
    for path in sorted((FIX / "schemas").rglob("*.json")):
        schema = json.loads(path.read_text())
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            found[("/".join(filter(None, (gvk["group"], gvk["version"]))), gvk["kind"])] = ("json", schema)
        kind, _, version = path.stem.partition("_")
        if version:
            for k in ("Service", "Kustomization", "PrometheusRule", "AuthorizationPolicy", "PyTorchJob", "Canary",
                      "MetricTemplate", "AlertProvider"):
                if k.lower() == kind:
                    found[(f"{path.parent.name}/{version}", k)] = ("json", schema)
    return found


SCHEMAS = _schemas()
KNATIVE = SCHEMAS[("serving.knative.dev/v1", "Service")][1]


def _k8s(spec: Path) -> dict[str, dict]:
    """Rendered k8s files by name: one object, or the list of a multi-document file."""
    files = [f for f in api.render_files([str(spec)]) if "/k8s/" in f.path]
    found = {}
    for f in files:
        docs = [d for d in yaml.safe_load_all(f.text) if d is not None]
        found[Path(f.path).name] = docs[0] if len(docs) == 1 else docs
    return found


def _objects(docs: dict) -> list[tuple[str, dict]]:
    return [(name, d) for name, doc in docs.items() for d in (doc if isinstance(doc, list) else [doc])]


def _owned(spec: Path, tmp_path: Path, **deployment: object) -> Path:
    """A copy of ``spec`` whose deployment also sets ``deployment`` (e.g. agent.manage: own)."""
    doc = yaml.safe_load(spec.read_text())
    for key, value in deployment.items():
        doc["spec"].setdefault("deployment", {})[key] = value
    out = tmp_path / spec.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_manifest_validates_against_its_schema(spec: Path, tmp_path: Path) -> None:
    docs = _k8s(spec)
    assert {"flux-kustomization.yaml", "kustomization.yaml", "prometheusrule.yaml", "serving.yaml"} <= set(docs)
    docs["agent.yaml"] = _k8s(_owned(spec, tmp_path, agent={"manage": "own"}))["agent.yaml"]
    variant = _k8s(_owned(spec, tmp_path, pod={"knative_features": ["kubernetes.podspec-init-containers"],
                                               "node_selector": {"gpu": "h100"}, "tolerations": [{"key": "gpu", "operator": "Exists"}]},
                          artifact={"repository": "oci://registry.example/models/x", "registry_secret": "pull"}))
    docs["serving-variant.yaml"] = variant["serving.yaml"]
    for name, doc in _objects(docs):
        if name == "kustomization.yaml":
            assert doc == {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": [n for n in _k8s(spec) if n not in ("kustomization.yaml", "flux-kustomization.yaml")]}
            continue
        draft, schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
        validator = jsonschema.Draft4Validator(schema) if draft == "draft4" else jsonschema.Draft7Validator(schema)
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], f"{name}: {errors}"
        assert unknown_fields(doc, schema) == [], name
    if "canary.yaml" in docs:  # rollout.engine flagger: Flagger owns spec.traffic
        assert "traffic" not in docs["serving.yaml"]["spec"]
    else:
        assert traffic_problems(docs["serving.yaml"]) == []


def test_tiny_manifests_exact_values(tmp_path: Path) -> None:
    docs = _k8s(ROOT / "specs" / "tiny-cpu.yaml")
    owned = _k8s(_owned(ROOT / "specs" / "tiny-cpu.yaml", tmp_path, agent={"manage": "own"}))["agent.yaml"]
    assert owned["metadata"]["namespace"] == "ai"  # the team's namespace; serving is in sre-llm's
    agent = owned["spec"]
    assert agent["ai"] == {"provider": "ollama", "endpoint": "http://sre-remediation-tiny.sre-llm.svc.cluster.local",
                           "model": "sre-remediation-tiny", "maxTokens": 512, "temperature": "0.0"}
    assert agent["env"] == [{"name": "MODEL_BACKEND", "value": "ollama"}, {"name": "MODEL_NAME", "value": "sre-remediation-tiny"}]
    assert "llm" not in agent
    assert agent["scaling"] == {"minReplicas": 0, "maxReplicas": 1, "targetConcurrency": 4}
    svc = docs["serving.yaml"]
    template = svc["spec"]["template"]
    assert template["metadata"]["name"] == "sre-remediation-tiny-v0-1-0"
    assert template["metadata"]["annotations"] == {"serving.knative.dev/progress-deadline": "3600s",
                                                   "autoscaling.knative.dev/min-scale": "0",
                                                   "autoscaling.knative.dev/max-scale": "1",
                                                   "autoscaling.knative.dev/target": "4"}
    gateway, container = template["spec"]["containers"]
    assert gateway["ports"] == [{"name": "http1", "containerPort": 8080}]  # the only serving port
    assert gateway["args"] == ["--upstream", "http://127.0.0.1:8000", "--model", "sre-remediation-tiny",
                               "--model-version", "0.1.0", "--answer-format", mf.answer_format(load_spec(ROOT / "specs" / "tiny-cpu.yaml").release),
                               "--max-new-tokens", str(load_spec(ROOT / "specs" / "tiny-cpu.yaml").release.spec.evaluation.max_new_tokens),
                               "--host", "0.0.0.0", "--port", "8080",
                               # action safety (render/safety.py): the spec's default rate limits, the kill switch
                               "--rate-limit", "pod-restart=3/1h", "--rate-limit", "scale-deployment=3/1h",
                               "--kill-switch", "/etc/sre-llm/killswitch", "--kill-switch-poll", "2",
                               # engine gitops with a shadow stage: copies go to the challenger's tag route
                               "--shadow", "http://challenger-sre-remediation-tiny.sre-llm.svc.cluster.local"]  # gitops: the tag route
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz"}
    assert gateway["startupProbe"]["httpGet"] == gateway["livenessProbe"]["httpGet"] == {"path": "/healthz"}
    assert "readinessProbe" not in container and "startupProbe" not in container  # Knative: serving container only
    model = "/models/sre-remediation-tiny/0.1.0/model"  # where `registry pull --out` puts the files
    assert container["args"][:2] == ["--model", model] and container["args"][-2:] == ["--dtype", "float32"]
    assert container["image"] == pod.CPU_IMAGE == "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.32.0"  # gpus: 0
    assert "ports" not in container  # vLLM answers on the pod's localhost only
    assert container["resources"] == {"limits": {"cpu": "2", "memory": "8Gi"}, "requests": {"cpu": "2", "memory": "8Gi"}}
    env = {e["name"]: e["value"] for e in container["env"]}
    # vllm-cpu's threads sized to the 2-CPU limit (one for its engine loop), not bound to the node's cores
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and env["OMP_NUM_THREADS"] == "1"
    for c in (gateway, container):
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                        "runAsUser": c["securityContext"]["runAsUser"],
                                        "runAsGroup": c["securityContext"]["runAsUser"],
                                        "seccompProfile": {"type": "RuntimeDefault"}}
        assert c["securityContext"]["runAsUser"] > 0
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory" and "persistentVolumeClaim" not in str(volumes)
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/models", "/cache", "/tmp", "/dev/shm"}
    labels = template["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "0.1.0" and labels["app.kubernetes.io/instance"] == "sre-remediation-tiny"
    # rollout.engine gitops (the tiny spec): the first release's split is pinned, no Canary
    assert svc["spec"]["traffic"] == [{"revisionName": "sre-remediation-tiny-v0-1-0", "tag": "champion", "percent": 100,
                                       "latestRevision": False}]
    assert "canary.yaml" not in docs
    flux = docs["flux-kustomization.yaml"]["spec"]
    assert flux["path"] == "./rendered/sre-remediation-tiny/k8s"
    assert flux["components"] == ["../../../rollouts/sre-remediation-tiny"] and flux["ignoreMissingComponents"] is True
    assert docs["prometheusrule.yaml"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = docs["prometheusrule.yaml"]["spec"]["groups"][0]["rules"][0]
    assert rule["alert"] == "SreLlmRolloutRolledBack"
    assert rule["expr"] == 'max by (model, version) (sre_llm_rollout_rolled_back{model="sre-remediation-tiny"}) > 0'


def test_gpu_resources_and_lora_serving_args() -> None:
    loaded = load_spec(ROOT / "tests" / "fixtures" / "specs" / "lora.yaml")
    release = loaded.release
    base = "oci://registry.example/models/base@sha256:" + "a" * 64
    lora = release.model_copy(update={"spec": release.spec.model_copy(update={
        "deployment": release.spec.deployment.model_copy(update={
            "serve_adapter": True, "gpus": 2,
            "artifact": ArtifactSpec(repository="oci://registry.example/models/x", base=base)})})})
    svc = mf.serving_service(lora, tr.split(release.metadata.version))
    container = svc["spec"]["template"]["spec"]["containers"][1]
    assert container["resources"] == {"limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
                                      "requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}}
    assert container["image"] == pod.GPU_IMAGE == "vllm/vllm-openai:v0.32.0"
    assert not {"VLLM_CPU_OMP_THREADS_BIND", "OMP_NUM_THREADS"} & {e["name"] for e in container["env"]}  # GPU: no CPU threads
    args = container["args"]
    name, version = release.metadata.name, release.metadata.version
    rank = str(release.spec.training.lora.rank)
    assert args[:9] == ["--model", f"/models/{name}/base/model", "--served-model-name", f"{name}-base", "--enable-lora",
                        "--lora-modules", f"{name}=/models/{name}/{version}/model", "--max-lora-rank", rank]
    assert "--revision" not in args  # the base is a pulled folder, not a hub id
    gateway = svc["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert f"pull {base} --out /models/{name}/base --verify" in gateway  # the base: pulled and verified, no hub
    assert container["command"][2].startswith(f"until [ -f /models/{name}/{version}/lineage.json ] && "
                                              f"[ -f /models/{name}/base/lineage.json ]; do sleep 2; done")


@pytest.mark.parametrize(("cpu", "env", "expected"), [
    ("6", [], {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "5"}),
    ("2500m", [], {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}),
    ("1", [], {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}),
    # a cluster with the kubelet's static CPU manager: vLLM's own binding on the exclusive cores
    ("6", [{"name": "VLLM_CPU_OMP_THREADS_BIND", "value": "auto"}], {"VLLM_CPU_OMP_THREADS_BIND": "auto"}),
    ("6", [{"name": "OMP_NUM_THREADS", "value": "3"}], {"OMP_NUM_THREADS": "3"}),
])
def test_cpu_vllm_threads_follow_the_containers_limit(cpu: str, env: list, expected: dict) -> None:
    release = load_spec(ROOT / "specs" / "tiny-cpu.yaml").release
    d = release.spec.deployment
    pod_spec = type(d.pod).model_validate({**d.pod.model_dump(), "env": env,
                                           "resources": {**d.pod.resources.model_dump(), "cpu": cpu}})
    release = release.model_copy(update={"spec": release.spec.model_copy(update={
        "deployment": d.model_copy(update={"pod": pod_spec})})})
    rendered = {e["name"]: e["value"] for e in pod.vllm_env(release)}
    assert {k: v for k, v in rendered.items() if k in ("VLLM_CPU_OMP_THREADS_BIND", "OMP_NUM_THREADS")} == expected
    names = [e["name"] for e in pod.vllm_env(release)]
    assert len(names) == len(set(names))  # never two values for one name


def test_split_between_champion_and_challenger(tmp_path: Path) -> None:
    # engine gitops: the split is rendered (with flagger, Flagger owns spec.traffic)
    loaded = load_spec(_owned(ROOT / "specs" / "tiny-cpu.yaml", tmp_path, rollout={"engine": "gitops"}))
    files = mf.render_manifests(loaded, champion="0.0.9", challenger="0.1.0", challenger_percent=10)
    svc = yaml.safe_load(next(f.text for f in files if f.path.endswith("serving.yaml")))
    assert svc["spec"]["traffic"] == [
        {"revisionName": "sre-remediation-tiny-v0-0-9", "tag": "champion", "percent": 90, "latestRevision": False},
        {"revisionName": "sre-remediation-tiny-v0-1-0", "tag": "challenger", "percent": 10, "latestRevision": False},
    ]
    assert traffic_problems(svc) == []


@pytest.mark.parametrize("percent, message", [
    (120, ("traffic split refused: champion: percent must be a whole number from 0 to 100 (got -20); "
           "challenger: percent must be a whole number from 0 to 100 (got 120)")),
    (-5, ("traffic split refused: champion: percent must be a whole number from 0 to 100 (got 105); "
          "challenger: percent must be a whole number from 0 to 100 (got -5)")),
])
def test_bad_split_is_refused_at_render_time(percent: int, message: str) -> None:
    loaded = load_spec(ROOT / "specs" / "tiny-cpu.yaml")
    with pytest.raises(BadInput) as err:
        mf.render_manifests(loaded, champion="0.0.9", challenger="0.1.0", challenger_percent=percent)
    assert str(err.value) == message
    assert err.value.exit_code == 2


def test_split_checks_sum_and_duplicates() -> None:
    with pytest.raises(BadInput, match=r"percentages must sum to 100 \(got 90 = champion 40 \+ challenger 50\)"):
        tr.check(tr.Split((tr.Route("1.0.0", "champion", 40), tr.Route("1.1.0", "challenger", 50))))
    with pytest.raises(BadInput, match="each route needs its own version"):
        tr.check(tr.Split((tr.Route("1.0.0", "champion", 50), tr.Route("1.0.0", "challenger", 50))))
    with pytest.raises(BadInput, match="needs a challenger version other than the champion"):
        tr.split("1.0.0", "1.0.0", 50)
    assert traffic_problems({"spec": {"traffic": [{"revisionName": "a", "percent": 60}, {"revisionName": "b", "percent": 60}]}}) \
        == ["spec.traffic: percentages sum to 120, not 100"]


def test_revision_names_derive_from_versions() -> None:
    assert tr.revision_name("m", "1.2.0") == "m-v1-2-0"
    assert tr.revision_name("m", "1.2.0-rc.1+build.5") == "m-v1-2-0-rc-1-build-5"
    with pytest.raises(BadInput, match="not a DNS-1123 label of at most 63 characters: shorten metadata.name"):
        tr.revision_name("x" * 58, "10.20.30")


def test_unknown_fields_are_reported_where_draft4_is_silent(tmp_path: Path) -> None:
    agent = _k8s(_owned(ROOT / "specs" / "tiny-cpu.yaml", tmp_path, agent={"manage": "own"}))["agent.yaml"]
    agent["spec"]["llm"] = {"model": "x"}  # the seed's mistake: the API server would prune it
    agent["spec"]["ai"]["maxTokenz"] = 5
    schema = _crd_schema()
    assert list(jsonschema.Draft4Validator(schema).iter_errors(agent)) == []
    assert unknown_fields(agent, schema) == ["spec.ai.maxTokenz", "spec.llm"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_rendered_tree_builds_with_kustomize(tmp_path: Path) -> None:
    files = mf.render_manifests(load_spec(ROOT / "specs" / "tiny-cpu.yaml"), root=str(tmp_path / "rendered"))
    for f in files:
        Path(f.path).parent.mkdir(parents=True, exist_ok=True)
        Path(f.path).write_text(f.text)
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path / "rendered" / "sre-remediation-tiny" / "k8s")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(out.stdout)}
    assert {"PrometheusRule", "Service"} <= kinds


def _agent_sre_env_names() -> set[str]:
    """The environment variables agent-sre's own config.py reads (from the fixture copy)."""
    import ast

    tree = ast.parse((FIX / "agent-sre" / "consumer" / "config.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "getenv"
            and node.args and isinstance(node.args[0], ast.Constant)}


def _agent_sre_backends() -> set[str]:
    """The MODEL_BACKEND values agent-sre's generator.py branches on (anything else → Anthropic)."""
    import re

    text = (FIX / "agent-sre" / "consumer" / "generator.py").read_text()
    return set(re.findall(r"""model_backend\s*==\s*["'](\w+)["']""", text))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_agent_patch_points_the_teams_real_lambdaagent_at_the_gateway(tmp_path: Path) -> None:
    """The team's own kustomization (agent-sre's real LambdaAgent) plus our component, built by
    kustomize: the result validates against the CRD, keeps the team's env, and sets what
    agent-sre's config.py reads so that it calls the gateway with its Ollama backend."""
    files = mf.render_manifests(load_spec(ROOT / "specs" / "tiny-cpu.yaml"), root=str(tmp_path / "rendered"))
    for f in files:
        Path(f.path).parent.mkdir(parents=True, exist_ok=True)
        Path(f.path).write_text(f.text)
    team = tmp_path / "team"
    team.mkdir()
    shutil.copy(FIX / "agent-sre" / "lambdaagent-agent-sre.yaml", team / "agent.yaml")
    (team / "kustomization.yaml").write_text(
        "resources: [agent.yaml]\ncomponents: [../rendered/sre-remediation-tiny/agent-patch]\n")
    out = subprocess.run(["kubectl", "kustomize", str(team)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    (agent,) = list(yaml.safe_load_all(out.stdout))
    schema = _crd_schema()
    assert list(jsonschema.Draft4Validator(schema).iter_errors(agent)) == []
    assert unknown_fields(agent, schema) == []
    assert agent["spec"]["ai"]["endpoint"] == "http://sre-remediation-tiny.sre-llm.svc.cluster.local"
    assert not agent["spec"]["ai"]["endpoint"].endswith("/v1")  # agent-sre posts to {OLLAMA_URL}/api/generate
    effective = {e["name"]: e.get("value") for e in agent["spec"]["env"]}  # the last entry of a name wins
    assert effective["PROMETHEUS_URL"] == "http://prometheus:9090"  # the team's own env is kept
    assert effective["MODEL_NAME"] == "sre-remediation-tiny"
    assert effective["MODEL_BACKEND"] == "ollama" and "ollama" in _agent_sre_backends()
    assert {"MODEL_NAME", "MODEL_BACKEND"} <= _agent_sre_env_names()


def test_two_specs_rendering_one_object_collide(tmp_path: Path) -> None:
    """Two releases that both own the LambdaAgent ai/agent-sre: render names both specs, writes nothing."""
    a = _owned(ROOT / "specs" / "tiny-cpu.yaml", tmp_path, agent={"manage": "own"})
    doc = yaml.safe_load(a.read_text())
    doc["metadata"]["name"] = "other-release"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "sre_llm", "render", "--json", "tiny-cpu.yaml", "b.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2, out.stderr
    message = json.loads(out.stdout)["error"]["message"]
    assert "LambdaAgent ai/agent-sre is rendered by both tiny-cpu.yaml (rendered/sre-remediation-tiny/k8s/agent.yaml) " \
           "and b.yaml (rendered/other-release/k8s/agent.yaml)" in message
    assert not (tmp_path / "rendered").exists()
    # the same against what is already on disk: render one, then the other alone
    first = subprocess.run([sys.executable, "-m", "sre_llm", "render", "tiny-cpu.yaml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-m", "sre_llm", "render", "b.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 2 and "LambdaAgent ai/agent-sre is rendered by both" in second.stderr
    assert not (tmp_path / "rendered" / "other-release").exists()


def test_shipped_specs_render_no_object_twice() -> None:
    api.render_files([str(p) for p in sorted(ROOT.glob("specs/*.yaml"))])  # raises BadInput on a collision


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rule = _k8s(ROOT / "specs" / "tiny-cpu.yaml")["prometheusrule.yaml"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 1 rules found" in out.stdout


def test_analysis_queries_must_select_by_revision(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "tiny-cpu.yaml").read_text().replace(
        "    rollout:\n      engine: gitops\n",
        "    rollout:\n      engine: gitops\n      analysis:\n        queries:\n          requests: sum(up)\n")
    (tmp_path / "x.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "sre_llm", "validate", "x.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    line = text.splitlines().index("          requests: sum(up)") + 1
    assert out.stderr.strip() == (f"x.yaml:{line}:21: spec.deployment.rollout.analysis.queries.requests: "
                                  "must select by revision: write $revision where the revision name goes")


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_collision_scan_reads_what_a_yaml_parser_reads(spec: Path, tmp_path: Path) -> None:
    """render's collision check scans lines instead of parsing YAML (speed): it must find the same
    objects a parser finds, in every rendered file (the owned LambdaAgent included)."""
    for path in (spec, _owned(spec, tmp_path, agent={"manage": "own"}, create_namespace=True)):
        for f in api.render_files([str(path)]):
            if "/k8s/" not in f.path:
                continue
            parsed = [(f"{d['kind']}.{d['apiVersion'].rpartition('/')[0]}".rstrip("."), d["metadata"].get("namespace", ""),
                       d["metadata"]["name"]) for d in yaml.safe_load_all(f.text) if d and "metadata" in d]
            assert api._objects(f.text) == parsed, f.path


_FLAG = re.compile(r"kubernetes\.(?:podspec|containerspec)-[a-z0-9-]+")


def _flags_from_schema(doc: object, schema: dict) -> set[str]:
    """Feature flags named by the descriptions of the schema fields ``doc`` actually sets."""
    found: set[str] = set()
    if isinstance(doc, dict) and isinstance(schema.get("properties"), dict):
        for key, value in doc.items():
            sub = schema["properties"].get(key)
            if sub is not None:
                found |= set(_FLAG.findall(sub.get("description", ""))) | _flags_from_schema(value, sub)
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for item in doc:
            found |= set(_FLAG.findall(schema["items"].get("description", ""))) | _flags_from_schema(item, schema["items"])
    return found


def _documented_flags() -> set[str]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    table = text.split("<!-- knative-flags -->")[1].split("<!-- /knative-flags -->")[0]
    return set(_FLAG.findall(table))


def test_knative_feature_flags_are_derived_from_the_schema_and_documented(tmp_path: Path) -> None:
    """Every rendered Service field whose Knative schema description names a feature flag: the
    product's list (serving.yaml's header) is exactly those, and docs/deploy.md lists the union."""
    variants = [(spec, {}) for spec in sorted(ROOT.glob("specs/*.yaml"))] + [
        (ROOT / "specs" / "tiny-cpu.yaml", {"pod": {"knative_features": ["kubernetes.podspec-init-containers"]},
                                            "artifact": {"repository": "oci://registry.example/models/tiny"}}),
        (ROOT / "specs" / "tiny-cpu.yaml", {"pod": {"node_selector": {"pool": "gpu"},
                                                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}}),
    ]
    union: set[str] = set()
    for i, (spec, deployment) in enumerate(variants):
        (tmp_path / str(i)).mkdir()
        path = _owned(spec, tmp_path / str(i), **deployment) if deployment else spec
        files = {Path(f.path).name: f.text for f in api.render_files([str(path)]) if "/k8s/" in f.path}
        service = yaml.safe_load(files["serving.yaml"])
        derived = _flags_from_schema(service, KNATIVE)
        assert derived == set(pod.knative_features(service["spec"]["template"]["spec"])), spec.name
        header = files["serving.yaml"].splitlines()[1]
        assert header == "# Knative feature flags (config-features) this Service needs: " + ", ".join(sorted(derived))
        union |= derived
    assert "kubernetes.podspec-persistent-volume-claim" not in union  # the model is pulled, not mounted
    assert union == _documented_flags()


def test_product_flag_table_agrees_with_the_schema() -> None:
    """pod.FEATURE_FIELDS names, for each path, the flag the Knative schema's description gives."""
    template = KNATIVE["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    for path, flag in pod.FEATURE_FIELDS.items():
        node = template
        for part in path.split("."):
            node = node["properties"][part.removesuffix("[]")]
            if part.endswith("[]"):
                node = node["items"]
        assert flag in _FLAG.findall(node.get("description", "")), path


def _kustomize(folder: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_every_shipped_tree_builds_and_no_object_collides() -> None:
    """`kubectl kustomize rendered/<name>/k8s` for each shipped spec, as committed (render --check
    keeps them current); every object validates; no (kind, namespace, name) twice."""
    seen: dict[tuple[str, str, str], str] = {}
    for spec in sorted(ROOT.glob("specs/*.yaml")):
        name = load_spec(spec).release.metadata.name
        for doc in _kustomize(ROOT / "rendered" / name / "k8s"):
            _, schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
            assert list(jsonschema.Draft7Validator(schema).iter_errors(doc)) == [], (name, doc["kind"])
            assert unknown_fields(doc, schema) == [], (name, doc["kind"])
            key = (f"{doc['apiVersion']}/{doc['kind']}", doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
            assert key not in seen or seen[key] == name, f"{key} rendered by {seen.get(key)} and {name}"
            seen[key] = name


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_documented_overlay_adds_a_toleration(tmp_path: Path) -> None:
    """The Kustomize overlay docs/deploy.md shows: a toleration without forking the spec."""
    text = (ROOT / "docs" / "deploy.md").read_text().split("<!-- overlay-example -->")[1]
    overlay = text.split("```yaml\n")[1].split("```")[0]
    files = mf.render_manifests(load_spec(ROOT / "specs" / "tiny-cpu.yaml"), root=str(tmp_path / "rendered"))
    for f in files:
        Path(f.path).parent.mkdir(parents=True, exist_ok=True)
        Path(f.path).write_text(f.text)
    (tmp_path / "overlays" / "gpu").mkdir(parents=True)
    (tmp_path / "overlays" / "gpu" / "kustomization.yaml").write_text(overlay)
    (service,) = [d for d in _kustomize(tmp_path / "overlays" / "gpu") if d["kind"] == "Service"
                  and d["apiVersion"] == "serving.knative.dev/v1"]
    assert service["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert list(jsonschema.Draft7Validator(KNATIVE).iter_errors(service)) == []
    assert "kubernetes.podspec-tolerations" in _flags_from_schema(service, KNATIVE)


def test_flux_depends_on_and_rule_labels_come_from_the_spec(tmp_path: Path) -> None:
    docs = _k8s(_owned(ROOT / "specs" / "tiny-cpu.yaml", tmp_path, flux_depends_on=["knative-serving", "monitoring-crds"],
                       rule_labels={"release": "prometheus"}))
    assert docs["flux-kustomization.yaml"]["spec"]["dependsOn"] == [{"name": "knative-serving"}, {"name": "monitoring-crds"}]
    assert docs["prometheusrule.yaml"]["metadata"]["labels"]["release"] == "prometheus"


def test_the_served_vllm_is_the_release_the_cpu_tests_run() -> None:
    """vLLM ignores request fields it does not know, so a constraint written for one release can
    fail open (HTTP 200, unconstrained) on another: the images are pinned to the release
    scripts/setup-serve.sh installs, which the contract tests run."""
    installed = re.search(r'(?m)^VLLM_CPU_VERSION="([^"]+)"', (ROOT / "scripts/setup-serve.sh").read_text()).group(1)
    assert pod.VLLM_VERSION == installed
    assert pod.GPU_IMAGE.endswith(f":v{installed}") and pod.CPU_IMAGE.endswith(f":v{installed}")
    serve_py = ROOT / ".venv-serve" / "bin" / "python"
    if serve_py.is_file():
        out = subprocess.run([str(serve_py), "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == installed
