"""A rebuilt cluster gets its champion back (engine gitops): with a rollout in progress (champion
1.0.0 at 90 %, challenger 1.1.0 at 10 %), what Flux builds from git alone (the rendered base plus
the rollout component, ``kubectl kustomize``) defines a template for every revision it routes to,
so an empty cluster recreates both; the champion's copy reports its canonical revision name."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from deploy_support import SPEC, git, run, run_json

from sre_llm.deploy.schemacheck import unknown_fields
from sre_llm.serve.config import GatewayConfig

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _spec_text(version: str) -> str:
    return SPEC.format(version=version).replace("      ab_test: {percent: 50, duration: 10s}\n", "      ab_test: null\n")


def _release(repo: Path, version: str) -> None:
    (repo / "specs/demo.yaml").write_text(_spec_text(version))
    run(repo, "render", "specs/demo.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"release {version}")


def _flux_view(repo: Path) -> list[dict]:
    """What Flux applies: the base with the rollout component (as test_deploy_rollout builds it)."""
    flux = yaml.safe_load((repo / "rendered/demo-model/k8s/flux-kustomization.yaml").read_text())["spec"]
    overlay = repo / "flux-view"
    overlay.mkdir(exist_ok=True)
    base = (repo / flux["path"]).resolve()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(Path("..") / base.relative_to(repo))],
        "components": [str(Path("..") / base.relative_to(repo) / flux["components"][0])]}))
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _templates(objects: list[dict]) -> dict[str, dict]:
    """Revision name → template, for every Knative object that makes revisions."""
    return {d["spec"]["template"]["metadata"]["name"]: d["spec"]["template"] for d in objects
            if d["apiVersion"] == "serving.knative.dev/v1" and d["kind"] in ("Service", "Configuration")}


def _configuration_schema() -> dict:
    """Knative's Configuration spec is the Service's ``spec.template`` alone (the Service inlines
    ConfigurationSpec and RouteSpec): the real Service schema's template, under a strict spec."""
    service = json.loads((ROOT / "tests/fixtures/schemas/serving.knative.dev/service_v1.json").read_text())
    return {**service, "properties": {**service["properties"], "spec": {
        "type": "object", "additionalProperties": False,
        "properties": {"template": service["properties"]["spec"]["properties"]["template"]}}}}


def test_the_routed_champion_revision_is_rendered_from_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Rollout Bot")
    git(repo, "config", "user.email", "rollout@example.org")
    (repo / ".gitignore").write_text(".cache/\n")
    _release(repo, "1.0.0")
    _release(repo, "1.1.0")
    released_1_0 = git(repo, "rev-list", "--max-count=1", "HEAD~1").strip()
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "1.0.0")

    objects = _flux_view(repo)
    svc = next(d for d in objects if d["kind"] == "Service" and d["apiVersion"] == "serving.knative.dev/v1")
    routes = [(t["tag"], t["revisionName"], t["percent"]) for t in svc["spec"]["traffic"]]
    assert routes == [("champion", "demo-model-pin-v1-0-0", 90), ("challenger", "demo-model-v1-1-0", 10)]
    templates = _templates(objects)
    # Every routed revision has its template in what Flux applies: an empty cluster makes both.
    assert {r[1] for r in routes} <= set(templates), sorted(templates)
    champion = templates["demo-model-pin-v1-0-0"]
    (gateway,) = [c for c in champion["spec"]["containers"] if c["name"] == "gateway"]
    assert gateway["args"][gateway["args"].index("--model-version") + 1] == "1.0.0"
    assert {"name": "SRE_LLM_REVISION", "value": "demo-model-v1-0-0"} in gateway["env"]
    config = next(d for d in objects if d["kind"] == "Configuration")
    assert config["metadata"]["annotations"]["sre-llm.io/pinned-from"] == released_1_0
    schema = _configuration_schema()
    jsonschema.Draft4Validator(schema).validate(config)
    assert unknown_fields(config, schema) == []
    policy = next(d for d in objects if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "demo-model-pin-v1-0-0")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"serving.knative.dev/configuration": "demo-model-pin-v1-0-0"}}

    # The pinned copy's gateway labels its metrics with the name the analysis queries.
    monkeypatch.setenv("K_REVISION", "demo-model-pin-v1-0-0")
    monkeypatch.setenv("SRE_LLM_REVISION", "demo-model-v1-0-0")
    assert GatewayConfig("http://127.0.0.1:1", "demo-model", "1.0.0").revision == "demo-model-v1-0-0"

    # Aborted: all traffic to the champion, still its pinned copy (the base serves 1.1.0).
    run_json(repo, "rollout", "abort", "specs/demo.yaml", "--reason", "test")
    svc = next(d for d in _flux_view(repo) if d["kind"] == "Service")
    assert [(t["revisionName"], t["percent"]) for t in svc["spec"]["traffic"]] == [("demo-model-pin-v1-0-0", 100)]


def test_a_complete_rollout_drops_the_pin(tmp_path: Path) -> None:
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Rollout Bot")
    git(repo, "config", "user.email", "rollout@example.org")
    (repo / ".gitignore").write_text(".cache/\n")
    _release(repo, "1.0.0")
    _release(repo, "1.1.0")
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "1.0.0")
    assert (repo / "rollouts/demo-model/champion.yaml").exists()
    for _ in range(3):  # 10 → 50 → 100 → complete
        run(repo, "rollout", "advance", "specs/demo.yaml")
    assert not (repo / "rollouts/demo-model/champion.yaml").exists()
    assert git(repo, "status", "--porcelain").strip() == ""  # the removal was committed
    objects = _flux_view(repo)
    assert not [d for d in objects if d["kind"] == "Configuration"]
    svc = next(d for d in objects if d["kind"] == "Service")
    assert [(t["revisionName"], t["percent"]) for t in svc["spec"]["traffic"]] == [("demo-model-v1-1-0", 100)]
