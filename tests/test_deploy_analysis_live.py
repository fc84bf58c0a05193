"""The default analysis queries on what this system really emits: a real Prometheus (Debian
package) on 127.0.0.1 scraping two real gateways (champion and challenger, the champion
shadowing to the challenger) and an exporter playing the collector's outcome counters. One
rollout, decided by the spec's default PromQL: the shadow gate holds on thin samples and passes
on agreement, a healthy challenger advances, a challenger whose vLLM fails is rolled back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from deploy_support import git, run

from sre_llm.answer import render_output
from sre_llm.deploy import analysis, prometheus
from sre_llm.deploy import rollout as ro
from sre_llm.serve import server
from sre_llm.serve.app import create_app
from sre_llm.serve.config import GatewayConfig
from sre_llm.spec.load import load_spec
from tests.helpers.fake_vllm import FakeVllm
from tests.test_serve_adapters import AI

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")]

SPEC = """\
apiVersion: sre-llm/v1
kind: ModelRelease
metadata: {name: demo-model, version: 0.2.0}
spec:
  base_model: {path: .cache/models/tiny, family: qwen2}
  training: {method: full, device: cpu, precision: fp32}
  deployment:
    namespace: ai
    gpus: 0
    scaling: {min_replicas: 1, max_replicas: 1, target_concurrency: 4}
    rollout:
      engine: gitops
      shadow: {duration: 10s, min_samples: 10, min_agreement: 0.9}
      ab_test: null
      steps: [50, 100]
      step_duration: 10s
      rollback: {min_success_rate: 0.8, max_error_rate: 0.05, max_p95_latency_ms: 500, failure_threshold: 1, min_samples: 20}
      analysis: {window: 1m}
"""
MODEL = "demo-model"
CHAMP, CHALL = "demo-model-v0-1-0", "demo-model-v0-2-0"
RESTART = render_output("pod-restart", {"name": "api-7d9f", "namespace": "payments"})
ALERT = {"labels": {"alertname": "KubePodCrashLooping", "namespace": "payments", "pod": "api-7d9f"}, "annotations": {}}


class Outcomes:
    """What the collector exports: ``sre_llm_remediation_outcomes_total`` growing with time."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                s = time.monotonic() - owner.t0
                lines = []
                for rev in (CHAMP, CHALL):
                    base = f'revision="{rev}",model_version="x",function="pod-restart"'
                    lines += [f"sre_llm_remediation_outcomes_total{{{base},outcome=\"resolved\"}} {int(10 * s)}",
                              f"sre_llm_remediation_outcomes_total{{{base},outcome=\"unresolved\"}} {int(s)}"]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.target = f"127.0.0.1:{self.server.server_address[1]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(tmp_path: Path):
    challenger_vllm, champion_vllm = FakeVllm(MODEL, RESTART), FakeVllm(MODEL, RESTART)
    challenger = server.Background(create_app(GatewayConfig(challenger_vllm.url, MODEL, "0.2.0", revision=CHALL)),
                                   server.bind("127.0.0.1", 0))
    champion = server.Background(create_app(GatewayConfig(champion_vllm.url, MODEL, "0.1.0", revision=CHAMP,
                                                          shadow=challenger.url)), server.bind("127.0.0.1", 0))
    outcomes = Outcomes()
    targets = [u.split("//")[1] for u in (champion.url, challenger.url)] + [outcomes.target]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "sre-llm", "static_configs": [{"targets": targets, "labels": {"namespace": "ai"}}]}]}))
    port = _free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url + "/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield {"prom": url, "champion": champion.url, "challenger": challenger.url, "challenger_vllm": challenger_vllm}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for bg in (champion, challenger):
            bg.stop()
        for s in (challenger_vllm, champion_vllm):
            s.close()
        outcomes.server.shutdown()


def _ask(url: str, n: int) -> None:
    prompt = AI.create_remediation_prompt(ALERT)
    for _ in range(n):
        httpx.post(f"{url}/api/generate", json={"model": MODEL, "prompt": prompt, "stream": False}, timeout=30)


def _scraped(prom: str, promql: str, at_least: float) -> None:
    for _ in range(100):
        if (prometheus.query(prom, promql) or 0) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"prometheus never had {promql} >= {at_least}")


def _analyze(repo: Path, prom: str, after_s: int = 11) -> dict:
    spec = load_spec(repo / "specs/demo.yaml")
    state = ro.require_state(repo, spec)
    now = ro.parse_time(state.stage_started) + timedelta(seconds=after_s)
    report, _ = analysis.analyze(repo, spec, lambda q: prometheus.query(prom, q), now=now)
    return report


def test_default_queries_decide_shadow_then_steps_then_rollback(live, tmp_path: Path) -> None:
    prom = live["prom"]
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Rollout Bot")
    git(repo, "config", "user.email", "rollout@example.org")
    (repo / "specs/demo.yaml").write_text(SPEC)
    run(repo, "render", "specs/demo.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    ro.start(repo, load_spec(repo / "specs/demo.yaml"), champion="0.1.0")

    # Warm up so every series exists before the counted traffic (increase() needs two samples).
    _ask(live["champion"], 1)
    _ask(live["challenger"], 1)
    _scraped(prom, f'sum(sre_llm_shadow_decisions_total{{shadow_revision="{CHALL}"}})', 1)
    _scraped(prom, f'sum(sre_llm_gateway_requests_total{{revision="{CHALL}",protocol="ollama"}})', 2)
    report = _analyze(repo, prom)
    assert report["decision"] == "hold" and report["reason"].startswith("too few shadow samples: challenger has ")

    _ask(live["champion"], 15)
    _scraped(prom, f'sum(sre_llm_shadow_decisions_total{{shadow_revision="{CHALL}",agree="true"}})', 16)
    report = _analyze(repo, prom)
    assert report["decision"] == "advance", report["reason"]
    assert report["checks"][0]["name"] == "shadow_agreement" and report["checks"][0]["value"] >= 0.99
    assert ro.require_state(repo, load_spec(repo / "specs/demo.yaml")).percent == 50

    # Healthy challenger at 50 %: requests, errors, p95 from the gateways; outcomes from the exporter.
    _ask(live["champion"], 25)
    _ask(live["challenger"], 25)
    _scraped(prom, f'sum(sre_llm_gateway_requests_total{{revision="{CHALL}",protocol="ollama"}})', 27)
    report = _analyze(repo, prom)
    assert report["decision"] == "advance", report["reason"]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["error_rate"]["value"] == 0 and checks["p95_latency_ms"]["value"] < 500
    assert checks["remediation_success_rate"]["value"] > 0.85
    assert report["arms"]["challenger"]["requests"] >= 20

    # The challenger's vLLM goes away: 503s, the error rate fails, the threshold (1) rolls back.
    live["challenger_vllm"].close()
    _ask(live["challenger"], 25)
    _scraped(prom, f'sum(sre_llm_gateway_requests_total{{revision="{CHALL}",status="503"}})', 25)
    # the 503 series existed at 0 before (the gateway exports it from the start): increase() sees all 25
    assert (prometheus.query(prom, f'sum(increase(sre_llm_gateway_requests_total{{revision="{CHALL}",status="503"}}[1m]))')
            or 0) >= 20
    report = _analyze(repo, prom)
    assert report["decision"] == "rollback", report["reason"]
    assert "error_rate" in report["reason"]
    assert ro.require_state(repo, load_spec(repo / "specs/demo.yaml")).phase == "rolled-back"
