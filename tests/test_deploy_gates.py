"""Flagger's webhook gates through the real collector (``sre-llm collect serve --rollout-spec`` as a
process on 127.0.0.1) deciding from a real Prometheus: thin traffic passes the rollout check but
holds at confirm-traffic-increase, a healthy challenger passes both, a worse one fails both, and
the shadow gate (confirm-rollout) holds until enough copies agree. The URLs and metadata posted
are the rendered Canary's own webhooks, as Flagger would post them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from deploy_support import SPEC
from test_deploy_analysis import Exporter, _arm, _play, prom  # noqa: F401 - prom is the module's fixture

from sre_llm.deploy import prometheus
from sre_llm.render import flagger
from sre_llm.render.k8s import _labels, render_manifests
from sre_llm.spec.load import load_spec

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
ROOT = Path(__file__).resolve().parent.parent
SHADOW_REV = "demo-model-shadow-v0-2-0"


def _spec(tmp_path: Path, prom_url: str) -> Path:
    text = SPEC.format(version="0.2.0").replace("engine: gitops", "engine: flagger").replace(
        "      shadow: null\n", "      shadow: {duration: 1m, min_samples: 10, min_agreement: 0.9}\n").replace(
        "        window: 1m\n", f"        window: 1m\n        prometheus_url: {prom_url}\n").replace(
        "  deployment:\n", "  deployment:\n    collector: {token: {secret: collector-token}}\n")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def collector(tmp_path: Path, prom):  # noqa: F811 - the imported fixture
    url, _ = prom
    spec = _spec(tmp_path, url)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLLECT_TOKEN": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "sre_llm", "collect", "serve", "--store", str(tmp_path / "store"),
                             "--listen", "127.0.0.1:0", "--token", "env:COLLECT_TOKEN", "--rollout-spec", str(spec),
                             "--quiet", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "}\n":  # --json prints one indented object, then serves
            lines.append(proc.stdout.readline())
            assert lines[-1], proc.stderr.read()
        yield json.loads("".join(lines))["url"], spec
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _post(url: str, payload: dict | bytes, token: str | None = None) -> tuple[int, str]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as r:
            return r.status, json.loads(r.read())["message"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["message"]


def _hooks(spec: Path, base: str) -> dict[str, tuple[str, dict]]:
    """The rendered Canary's webhooks by type: (URL on the test collector, Flagger's payload)."""
    release = load_spec(spec).release
    canary = flagger.canary(release, "demo-model", _labels(release, "rollout"), {"champion": "0.1.0", "challenger": "0.2.0"})
    out = {}
    for hook in canary["spec"]["analysis"]["webhooks"]:
        path = urllib.parse.urlsplit(hook["url"]).path
        payload = {"name": "demo-model", "namespace": "ai", "phase": "Progressing", "checksum": "6d5c8b",
                   "metadata": hook["metadata"]}
        out[hook["type"]] = (base.rstrip("/") + path, payload)
    return out


def _shadow(prom_url: str, exporter: Exporter, folder: Path, agree: int, disagree: int) -> None:
    lines = [f'sre_llm_shadow_decisions_total{{namespace="ai",shadow_revision="{SHADOW_REV}",agree="{a}"}} {n}'
             for a, n in (("true", agree), ("false", disagree))]
    (folder / "shadow.prom").write_text("\n".join(lines) + "\n")
    exporter.textfile_dir = folder
    q = f'sum(sre_llm_shadow_decisions_total{{shadow_revision="{SHADOW_REV}"}})'
    for _ in range(100):
        if prometheus.query(prom_url, q) == agree + disagree:
            return
        time.sleep(0.1)
    raise AssertionError("prometheus did not scrape the shadow counters")


def test_gates_decide_from_prometheus_through_the_collector(collector, prom, tmp_path: Path) -> None:  # noqa: F811
    base, spec = collector
    prom_url, exporter = prom
    hooks = _hooks(spec, base)
    assert set(hooks) == {"confirm-rollout", "rollout", "confirm-traffic-increase"}
    check, confirm, shadow = hooks["rollout"], hooks["confirm-traffic-increase"], hooks["confirm-rollout"]
    assert check[1]["metadata"] == {"model": "demo-model", "challenger": "0.2.0", "champion": "0.1.0"}

    # Thin traffic (min_samples 100): the rollout check passes (a failure would count toward a
    # rollback), the traffic increase holds.
    _play(prom_url, exporter, _arm(60, 0, 120, 50, 48), _arm(40, 0, 130, 30, 29))
    status, message = _post(*check)
    assert (status, message.split(":")[0]) == (200, "pass (too few samples")
    status, message = _post(*confirm)
    assert status == 412 and message.startswith("hold: too few samples: challenger has 40 requests / 30 remediations")

    # Healthy: both pass. No bearer token: Flagger sends none (the decisions endpoint still asks).
    _play(prom_url, exporter, _arm(1000, 10, 200, 300, 290), _arm(1000, 12, 210, 300, 288))
    assert _post(*check)[0] == 200
    status, message = _post(*confirm)
    assert status == 200 and message.startswith("all checks pass: remediation_success_rate 0.96")
    assert _post(base + "decisions", {"fingerprint": "x"})[0] == 401

    # Worse: errors 6 % (over 5 %) and significantly above the champion's 1 %: both refuse.
    _play(prom_url, exporter, _arm(1000, 10, 200, 300, 290), _arm(1000, 60, 210, 300, 288))
    status, message = _post(*check)
    assert status == 412 and message.startswith("failed error_rate 0.06 <= 0.05 (challenger 60/1000, champion 10/1000, p="), message
    assert _post(*confirm)[0] == 412

    # Shadow gate: holds without copies, holds on disagreement, passes on agreement.
    status, message = _post(*shadow)
    assert status == 412 and message.startswith(f"hold: too few shadow samples: {SHADOW_REV} answered no data")
    _shadow(prom_url, exporter, tmp_path, 0, 0)
    _shadow(prom_url, exporter, tmp_path, 20, 20)
    status, message = _post(*shadow)
    assert status == 412 and message.startswith("hold: shadow agreement 0.5") and "< 0.9 over" in message, message
    _shadow(prom_url, exporter, tmp_path, 400, 20)
    status, message = _post(*shadow)
    assert status == 200 and message.startswith("shadow agreement 0.9"), message

    assert _post(check[0], b"not json")[0] == 400


def test_webhooks_need_a_collector_and_render_into_a_valid_canary(tmp_path: Path) -> None:
    import jsonschema

    from sre_llm.deploy.schemacheck import unknown_fields

    schema = json.loads((ROOT / "tests/fixtures/schemas/flagger.app/canary_v1beta1.json").read_text())
    spec = _spec(tmp_path, "http://prometheus.monitoring:9090")
    release = load_spec(spec).release
    canary = flagger.canary(release, "demo-model", _labels(release, "rollout"), {"champion": "0.1.0"})
    jsonschema.Draft4Validator(schema).validate(canary)
    assert unknown_fields(canary, schema) == []
    hooks = canary["spec"]["analysis"]["webhooks"]
    assert [(h["type"], h["url"]) for h in hooks] == [
        ("confirm-rollout", "http://demo-model-collector.ai.svc.cluster.local:9095/flagger/shadow"),
        ("rollout", "http://demo-model-collector.ai.svc.cluster.local:9095/flagger/check"),
        ("confirm-traffic-increase", "http://demo-model-collector.ai.svc.cluster.local:9095/flagger/confirm")]
    # The collector reads the spec from a ConfigMap, and admits Flagger's namespace.
    files = {Path(f.path).name: f.text for f in render_manifests(load_spec(spec)) if "/k8s/" in f.path}
    import yaml

    collector_docs = list(yaml.safe_load_all(files["collector.yaml"]))
    configmap = next(d for d in collector_docs if d["kind"] == "ConfigMap")
    assert load_spec(spec).text == configmap["data"]["spec.yaml"]
    sts = next(d for d in collector_docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--rollout-spec", "/etc/sre-llm/rollout/spec.yaml"]
    policy = next(d for d in yaml.safe_load_all(files["security.yaml"])
                  if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "demo-model-collector")
    namespaces = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert "flagger-system" in namespaces
    no_collector = spec.read_text().replace("    collector: {token: {secret: collector-token}}\n", "")
    spec.write_text(no_collector)
    release = load_spec(spec).release
    assert "webhooks" not in flagger.canary(release, "demo-model", {}, {"champion": "0.1.0"})["spec"]["analysis"]
