"""Rollout analysis against a real Prometheus (Debian package) on 127.0.0.1, scraping a small
exporter in this process that plays the champion's and challenger's metrics, and evaluating the
rendered PrometheusRule. Every decision is a real commit in a git repo in tmp_path."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from deploy_support import changed_files, git, make_repo, run_json

from sre_llm.deploy import analysis, prometheus
from sre_llm.deploy import rollout as ro
from sre_llm.spec.load import load_spec

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus is not installed (apt-get install -y prometheus)")

CHAMP, CHALL = "demo-model-v0-1-0", "demo-model-v0-2-0"


class Exporter:
    """Serves ``/metrics``: the arms' series set by the test, plus every ``*.prom`` file in
    ``textfile_dir`` (what node-exporter's textfile collector does with sre-llm's gauges)."""

    def __init__(self) -> None:
        self.arms: dict[str, dict[str, float]] = {}
        self.textfile_dir: Path | None = None
        self.generation = 0  # bumped with each scenario, so a test can wait until Prometheus has it
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self) -> str:
        lines = [f"demo_scenario {self.generation}"]
        for rev, m in self.arms.items():
            ok = m["requests"] - m["errors"]
            lines += [f'demo_requests_total{{revision="{rev}",code="200"}} {ok}',
                      f'demo_requests_total{{revision="{rev}",code="500"}} {m["errors"]}',
                      f'demo_latency_p95_ms{{revision="{rev}"}} {m["p95"]}',
                      f'demo_remediations_total{{revision="{rev}",outcome="success"}} {m["successes"]}',
                      f'demo_remediations_total{{revision="{rev}",outcome="failure"}} {m["remediations"] - m["successes"]}']
        if self.textfile_dir and self.textfile_dir.is_dir():
            for f in sorted(self.textfile_dir.glob("*.prom")):
                lines.append(f.read_text().rstrip("\n"))
        return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Exporter]]:
    """Prometheus 2.x scraping the exporter every second, with the rendered alert rules."""
    from deploy_support import SPEC

    from sre_llm.render.k8s import prometheus_rule

    tmp = tmp_path_factory.mktemp("prometheus")
    exporter = Exporter()
    (tmp / "spec.yaml").write_text(SPEC.format(version="0.2.0"))
    rule = prometheus_rule(load_spec(tmp / "spec.yaml").release)
    groups = rule["spec"]["groups"]
    for g in groups:
        g["interval"] = "1s"  # the rendered 30s, shortened for the test
    (tmp / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [{"job_name": "arms", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
    }))
    port = _free_port()
    log = open(tmp / "prometheus.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("prometheus did not become ready: " + (tmp / "prometheus.log").read_text())
        yield url, exporter
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        exporter.server.shutdown()


def _arm(requests: float, errors: float, p95: float, remediations: float, successes: float) -> dict[str, float]:
    return {"requests": requests, "errors": errors, "p95": p95, "remediations": remediations, "successes": successes}


def _play(url: str, exporter: Exporter, champion: dict, challenger: dict) -> None:
    """Set both arms and wait until Prometheus has scraped them."""
    exporter.generation += 1
    exporter.arms = {CHAMP: champion, CHALL: challenger}
    for _ in range(100):
        if prometheus.query(url, "max(demo_scenario)") == exporter.generation:
            return
        time.sleep(0.1)
    raise AssertionError("prometheus did not scrape the new values")


def _registry(repo: Path) -> None:
    """A registry index with 0.1.0 champion and 0.2.0 challenger, committed."""
    from sre_llm.registry import index as ix

    def version(v: str, status: str) -> ix.Version:
        return ix.Version(version=v, status=status, created="2026-01-01T00:00:00.000Z", created_by="test",
                          spec=ix.SpecRef(path="specs/demo.yaml", sha256="sha256:0", version=v),
                          base_model=ix.BaseModelRef(path=".cache/models/tiny", family="qwen2"),
                          artifact=ix.Artifact(digest=f"sha256:{v}", size=0, files=[]), gates_passed=True)

    ix.save(repo, ix.RegistryIndex(model="demo-model", aliases={"champion": "0.1.0", "challenger": "0.2.0"},
                                   versions=[version("0.1.0", "champion"), version("0.2.0", "challenger")]))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "registry")


def _analyze(repo: Path, url: str, after_s: int = 11, metrics_dir: Path | None = None):
    spec = load_spec(repo / "specs/demo.yaml")
    state = ro.require_state(repo, spec)
    now = ro.parse_time(state.stage_started) + timedelta(seconds=after_s)
    return analysis.analyze(repo, spec, lambda q: prometheus.query(url, q), now=now, metrics_dir=metrics_dir)


def test_healthy_challenger_goes_ab_10_50_100(prom, tmp_path: Path) -> None:
    url, exporter = prom
    exporter.textfile_dir = tmp_path / "metrics"
    repo = make_repo(tmp_path)
    _registry(repo)
    _play(url, exporter, _arm(1000, 6, 210, 500, 470), _arm(1000, 4, 190, 500, 478))
    assert run_json(repo, "rollout", "start", "specs/demo.yaml")["state"]["champion"] == "0.1.0"  # from the registry
    report, change = _analyze(repo, url, after_s=2)
    assert (report["decision"], report["reason"]) == ("hold", "checks pass; the stage runs 10 s, 2 s so far")
    assert changed_files(repo) == ["rollouts/demo-model/analysis.json"]
    path = []
    for _ in range(4):
        report, change = _analyze(repo, url, metrics_dir=tmp_path / "metrics")
        assert report["decision"] == "advance", report["reason"]
        path.append((change.state.phase, change.state.percent))
    assert path == [("progressing", 10), ("progressing", 50), ("progressing", 100), ("complete", 0)]
    assert report["reason"] == "all checks pass after 11 s at 100 %"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["error_rate"]["value"] == 0.004 and checks["error_rate"]["p_value"] is None  # no champion traffic at 100 %
    assert checks["remediation_success_rate"]["value"] == 0.956 and checks["p95_latency_ms"]["value"] == 190
    body = git(repo, "log", "-1", "--format=%B")
    assert body.splitlines()[0] == "rollout: demo-model 0.2.0 complete, now the champion (promote it in the registry: sre-llm registry promote)"
    assert "  pass error_rate: 0.004 <= 0.05 (challenger 4/1000, champion 6/1000)" in body
    assert "Rollout-Decision: advance" in body
    report_file = json.loads((repo / "rollouts/demo-model/analysis.json").read_text())
    assert report_file["decision"] == "advance" and report_file["arms"]["challenger"]["requests"] == 1000
    subjects = git(repo, "log", "--format=%s", "-6").splitlines()
    assert subjects[1:5] == ["rollout: demo-model 0.2.0 50 % → 100 % (step-3)", "rollout: demo-model 0.2.0 10 % → 50 % (step-2)",
                             "rollout: demo-model 0.2.0 50 % → 10 % (step-1)",
                             "rollout: demo-model 0.2.0 hold at 50 % (checks pass; the stage runs 10 s, 2 s so far)"]


def test_degraded_challenger_is_rolled_back_with_the_alert(prom, tmp_path: Path) -> None:
    url, exporter = prom
    metrics = tmp_path / "metrics"
    exporter.textfile_dir = metrics
    repo = make_repo(tmp_path)
    _registry(repo)
    _play(url, exporter, _arm(1000, 5, 200, 500, 470), _arm(1000, 150, 230, 500, 400))
    run_json(repo, "rollout", "start", "specs/demo.yaml", "--metrics-dir", str(metrics))
    report, _ = _analyze(repo, url, metrics_dir=metrics)
    assert report["decision"] == "hold" and report["failed_checks"] == 1
    assert report["reason"] == "failed remediation_success_rate, error_rate (1 of 2 before rollback)"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["error_rate"]["value"] == 0.15 and checks["error_rate"]["p_value"] < 1e-30
    assert checks["remediation_success_rate"]["value"] == 0.8 and checks["p95_latency_ms"]["passed"] is True
    out = run_json(repo, "rollout", "analyze", "specs/demo.yaml", "--prometheus", url, "--metrics-dir", str(metrics),
                   code=1)  # the second failed analysis, from the command line: exit 1 on a rollback
    report = out["report"]
    assert out["ok"] is False and out["error"]["code"] == "rolled_back"
    assert out["decision"] == report["decision"] == "rollback"
    assert report["reason"] == "failed remediation_success_rate, error_rate; 2 failed analyses reach the threshold 2"
    state = ro.require_state(repo, load_spec(repo / "specs/demo.yaml"))
    assert (state.phase, state.champion, state.percent, state.failed_checks) == ("rolled-back", "0.1.0", 0, 2)
    traffic = yaml.safe_load((repo / "rollouts/demo-model/traffic.yaml").read_text())["spec"]["traffic"]
    assert traffic == [{"revisionName": CHAMP, "tag": "champion", "percent": 100, "latestRevision": False}]
    body = git(repo, "log", "-1", "--format=%B")
    assert body.splitlines()[0] == "rollout: roll back demo-model 0.2.0 at 50 %, all traffic to 0.1.0"
    assert "  FAIL error_rate: 0.15 <= 0.05 (challenger 150/1000, champion 5/1000, p=" in body
    assert "Rollout-Decision: rollback" in body
    assert "registry/demo-model.yaml" in changed_files(repo)
    index = yaml.safe_load((repo / "registry/demo-model.yaml").read_text())
    assert index["aliases"] == {"champion": "0.1.0"}
    assert {v["version"]: v["status"] for v in index["versions"]} == {"0.1.0": "champion", "0.2.0": "rolled-back"}
    from sre_llm import audit

    log = audit.log_path(repo)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert (events[-1]["action"], events[-1]["subject"]) == ("rollout-rollback", "demo-model@0.2.0")
    assert 'sre_llm_rollout_rolled_back{model="demo-model",namespace="ai",version="0.2.0"} 1' in \
        (metrics / "sre-llm-rollout-demo-model.prom").read_text()
    for _ in range(100):  # the rendered rule fires in the real Prometheus
        alerts = _get(url + "/api/v1/alerts")["data"]["alerts"]
        firing = [a for a in alerts if a["labels"].get("alertname") == "SreLlmRolloutRolledBack" and a["state"] == "firing"]
        if firing:
            break
        time.sleep(0.1)
    assert firing and firing[0]["labels"]["version"] == "0.2.0" and firing[0]["labels"]["model"] == "demo-model"
    assert firing[0]["annotations"]["summary"] == "demo-model: challenger 0.2.0 was rolled back"


def test_too_few_samples_holds_without_counting_a_failure(prom, tmp_path: Path) -> None:
    url, exporter = prom
    exporter.textfile_dir = tmp_path / "metrics"
    repo = make_repo(tmp_path)
    # Terrible figures, but too few of them to decide anything.
    _play(url, exporter, _arm(1000, 5, 200, 500, 470), _arm(40, 20, 900, 30, 5))
    run_json(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    dry = run_json(repo, "rollout", "analyze", "specs/demo.yaml", "--prometheus", url, "--dry-run")
    assert dry["report"]["decision"] == "hold" and git(repo, "status", "--porcelain") == ""
    head = git(repo, "rev-parse", "HEAD")
    out = run_json(repo, "rollout", "analyze", "specs/demo.yaml", "--prometheus", url)
    assert out["report"]["reason"] == "too few samples: challenger has 40 requests / 30 remediations; need 100 each"
    assert (out["decision"], out["state"]["failed_checks"], out["state"]["percent"]) == ("hold", 0, 50)
    assert out["report"]["checks"] == []
    assert git(repo, "rev-parse", "HEAD^") == head  # a real commit, with only the report changed
    assert changed_files(repo) == ["rollouts/demo-model/analysis.json"]
    assert git(repo, "log", "-1", "--format=%s").strip() == (
        "rollout: demo-model 0.2.0 hold at 50 % (too few samples: challenger has 40 requests / 30 remediations; need 100 each)")


def test_unreachable_prometheus_decides_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    run_json(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    head = git(repo, "rev-parse", "HEAD")
    url = f"http://127.0.0.1:{_free_port()}"
    out = run_json(repo, "rollout", "analyze", "specs/demo.yaml", "--prometheus", url, code=1)
    assert out["error"]["code"] == "unreachable"
    assert out["error"]["message"].startswith(f"prometheus at {url} is unreachable (")
    assert git(repo, "rev-parse", "HEAD") == head


def test_two_proportion_test_values() -> None:
    # 60/1000 vs 40/1000: pooled 0.05, z = 0.02 / sqrt(0.05 * 0.95 * 2/1000) = 2.0520, one-sided p = 0.0201
    assert round(analysis.two_proportion_p(40, 1000, 60, 1000), 4) == 0.0201
    assert analysis.two_proportion_p(60, 1000, 40, 1000) > 0.97
    assert analysis.two_proportion_p(0, 100, 0, 100) == 1.0
