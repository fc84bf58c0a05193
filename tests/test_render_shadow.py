"""Shadow in Flagger mode: while the registry names this version the challenger (and a champion
exists), ``render`` adds ``<service>-shadow``, a Knative Service running the challenger that the
champion's gateway copies requests to (``--shadow`` is in every version's template, so the
champion's revision, rendered earlier, already has it). Validated against the real Knative and
NetworkPolicy schemas; the shadow pods admit what the serving pods admit."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from deploy_support import SPEC, git, run
from test_deploy_analysis import _registry

from sre_llm.deploy.schemacheck import unknown_fields

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests/fixtures/schemas"


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Release Person")
    git(repo, "config", "user.email", "release@example.org")
    (repo / "specs/demo.yaml").write_text(SPEC.format(version="0.2.0").replace("engine: gitops", "engine: flagger").replace(
        "      shadow: null\n", "      shadow: {duration: 1h, min_samples: 50}\n").replace(
        "  deployment:\n", "  deployment:\n    collector: {}\n"))
    (repo / ".gitignore").write_text(".cache/\n")
    return repo


def _k8s(repo: Path) -> dict[str, list[dict]]:
    run(repo, "render", "specs/demo.yaml")
    folder = repo / "rendered/demo-model/k8s"
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in folder.glob("*.yaml")}


def _gateway_args(service: dict) -> list[str]:
    (c,) = [c for c in service["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway"]
    return c["args"]


def test_shadow_service_only_while_the_registry_has_a_challenger(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    docs = _k8s(repo)  # no registry: nothing to shadow yet, but the gateway already points there
    assert "shadow.yaml" not in docs
    (serving,) = docs["serving.yaml"]
    args = _gateway_args(serving)
    assert args[args.index("--shadow") + 1] == "http://demo-model-shadow.ai.svc.cluster.local"

    _registry(repo)  # champion 0.1.0, challenger 0.2.0 (this spec's version)
    docs = _k8s(repo)
    shadow, policy = docs["shadow.yaml"]
    knative = json.loads((FIX / "serving.knative.dev/service_v1.json").read_text())
    jsonschema.Draft4Validator(knative).validate(shadow)
    assert unknown_fields(shadow, knative) == []
    netpol = json.loads((FIX / "core/networkpolicy-networking-v1.json").read_text())
    jsonschema.Draft202012Validator(netpol).validate(policy)
    assert unknown_fields(policy, netpol) == []

    assert shadow["metadata"]["name"] == "demo-model-shadow" and "traffic" not in shadow["spec"]
    assert shadow["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert shadow["spec"]["template"]["metadata"]["name"] == "demo-model-shadow-v0-2-0"
    args = _gateway_args(shadow)
    assert "--shadow" not in args and "--collector" not in args  # it shadows nothing, reports nothing
    assert args[args.index("--model-version") + 1] == "0.2.0"
    (serving,) = docs["serving.yaml"]
    assert shadow["spec"]["template"]["spec"]["containers"][1] == serving["spec"]["template"]["spec"]["containers"][1]
    serving_policy = next(d for d in docs["security.yaml"] if d["kind"] == "NetworkPolicy"
                          and d["metadata"]["name"] == "demo-model-serving")
    assert policy["spec"]["ingress"] == serving_policy["spec"]["ingress"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"serving.knative.dev/service": "demo-model-shadow"}}
    assert "shadow.yaml" in docs["kustomization.yaml"][0]["resources"]
    # The Canary waits for the shadow gate before Flagger shifts any traffic.
    (canary,) = docs["canary.yaml"]
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert hooks["confirm-rollout"]["url"].endswith(":9095/flagger/shadow")
    assert hooks["confirm-rollout"]["metadata"] == {"model": "demo-model", "challenger": "0.2.0", "champion": "0.1.0"}
