"""Real Prometheus + Alertmanager on 127.0.0.1: rules with agent-sre annotations fire, the
Prometheus collector reads them, Alertmanager delivers to `sre-llm collect serve`, and a SIGKILL
of the receiver while Alertmanager is sending loses no payload it acknowledged."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sre_llm.collect.alertmanager import read_store
from sre_llm.collect.prometheus import Client, collect
from sre_llm.answer.format import parse_output
from sre_llm.dataset.pipeline import Settings, run
from sre_llm.dataset.records import fingerprint
from sre_llm.dataset.redact import Redactor
from sre_llm.dataset.split import SPLITS
from sre_llm.spec.model import PrometheusSource

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PROMETHEUS and ALERTMANAGER),
                       reason="prometheus / prometheus-alertmanager binaries absent (apt-get install prometheus prometheus-alertmanager)"),
]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-token-4b1d"

# The agent-sre test rules' annotations, on series made with label_replace so they fire at once.
RULES = """
groups:
- name: agent-sre-tests
  interval: 1s
  rules:
  - alert: TestPodCrashLoopBackOff
    expr: label_replace(label_replace(vector(1), "pod", "web-7d4f9c6b8-x2x9q", "", ""), "namespace", "ai", "", "")
    labels: {severity: warning, test_scenario: crashloopbackoff}
    annotations:
      summary: "Test pod {{ $labels.pod }} is in CrashLoopBackOff"
      description: "Pod {{ $labels.pod }} in namespace {{ $labels.namespace }} has crashed multiple times"
      lambda_function: "pod-restart"
      lambda_parameters: '{"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}", "type": "pod"}'
  - alert: TestDeploymentNeedsScaling
    expr: label_replace(label_replace(vector(1), "deployment", "checkout", "", ""), "namespace", "shop", "", "")
    labels: {severity: info, test_scenario: needs-scaling}
    annotations:
      summary: "Test deployment {{ $labels.deployment }} needs scaling"
      description: "Deployment {{ $labels.deployment }} has only {{ $value }} replica, should scale to 3"
      lambda_function: "scale-deployment"
      lambda_parameters: '{"name": "{{ $labels.deployment }}", "namespace": "{{ $labels.namespace }}", "replicas": 3}'
  - alert: Watchdog
    expr: vector(1)
    labels: {severity: none}
    annotations:
      summary: "An alert that should always be firing to certify that Alertmanager is working properly."
"""

EXPECTED = {
    "TestPodCrashLoopBackOff": ("pod-restart", {"name": "web-7d4f9c6b8-x2x9q", "namespace": "ai", "type": "pod"}),
    "TestDeploymentNeedsScaling": ("scale-deployment", {"name": "checkout", "namespace": "shop", "replicas": 3}),
    "Watchdog": None,  # no annotation and never resolves: no evidence, unlabelled (not `none`)
}
LABELLED = {k: v for k, v in EXPECTED.items() if v is not None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float, what: str, step: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        host, port = url.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=1)
        conn.request("GET", "/" + url.split("//")[1].split("/", 1)[1])
        return conn.getresponse().status == 200
    except OSError:
        return False


class Receiver:
    """`sre-llm collect serve` as a real child process."""

    def __init__(self, store: Path, port: int):
        self.store, self.port, self.proc = store, port, None

    def start(self) -> None:
        env = {**os.environ, "AM_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sre_llm", "collect", "serve", "--store", str(self.store), "--listen",
             f"127.0.0.1:{self.port}", "--token", "env:AM_TOKEN", "--quiet"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith(f"listening on http://127.0.0.1:{self.port}/"), (line, self.proc.stderr.read())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    pport, aport, rport, xport = free_port(), free_port(), free_port(), free_port()
    (tmp / "rules.yml").write_text(RULES)
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\n"
        f"alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{aport}']\n")
    # Two routes: the three alerts go straight to the receiver; the flood (for the SIGKILL test)
    # goes through a recording proxy, one group per alert, re-sent every second.
    (tmp / "alertmanager.yml").write_text(f"""
route:
  receiver: direct
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
  - receiver: proxied
    matchers: ['flood="yes"']
    group_by: ['...']
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1s
receivers:
- name: direct
  webhook_configs:
  - url: http://127.0.0.1:{rport}/
    http_config: {{authorization: {{credentials: {TOKEN}}}}}
- name: proxied
  webhook_configs:
  - url: http://127.0.0.1:{xport}/
    http_config: {{authorization: {{credentials: {TOKEN}}}}}
""")
    receiver = Receiver(tmp / "store", rport)
    receiver.start()
    procs = [
        subprocess.Popen([ALERTMANAGER, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}",
                          f"--web.listen-address=127.0.0.1:{aport}", "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=open(tmp / "am.log", "w")),
        subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{pport}", "--rules.alert.resend-delay=1s"],
                         stdout=subprocess.DEVNULL, stderr=open(tmp / "prom.log", "w")),
    ]
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{aport}/-/ready"), 30, "alertmanager ready")
        wait_for(lambda: http_ok(f"http://127.0.0.1:{pport}/-/ready"), 30, "prometheus ready")
        yield {"tmp": tmp, "prom": f"http://127.0.0.1:{pport}", "am": f"http://127.0.0.1:{aport}",
               "receiver": receiver, "proxy_port": xport, "prometheus": procs[1]}
    finally:
        receiver.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def stored_alertnames(store: Path) -> set[str]:
    return {r["labels"]["alertname"] for r in read_store(store) if isinstance(r, dict) and r.get("kind") == "alert"} \
        if store.is_dir() else set()


def examples(records) -> tuple[dict[str, tuple], set[str]]:
    """alertname → answer of every example, and the alertnames left unlabelled."""
    res = run(records, Settings(name="live", min_examples=1), Redactor())
    out = {}
    for s in SPLITS:
        for row in res.rows(s):
            name = row["input"].splitlines()[0].removeprefix("alertname: ")
            out[name] = parse_output(row["output"], strict=True)
    return out, {r["alertname"] for r in res.unlabelled}


def test_alertmanager_delivers_to_receiver(stack):
    store = stack["tmp"] / "store"
    wait_for(lambda: stored_alertnames(store) >= set(EXPECTED), 60, "all three alerts in the receiver's store")
    records = [r for r in read_store(store) if r["labels"]["alertname"] in EXPECTED]
    for r in records:  # our fingerprint is Alertmanager's
        assert r["fingerprint"] == fingerprint(r["labels"])
    assert examples(records) == (LABELLED, {"Watchdog"})
    lines = (store / "webhook.jsonl").read_text().splitlines()
    payload = json.loads(lines[0])["payload"]
    assert payload["version"] == "4" and payload["receiver"] == "direct"


def test_prometheus_collector_reads_history_and_current(stack):
    wait_for(lambda: http_ok(stack["prom"] + "/api/v1/alerts") and len(
        json.loads(__import__("urllib.request").request.urlopen(stack["prom"] + "/api/v1/alerts").read())["data"]["alerts"]) >= 3,
        30, "three firing alerts in prometheus")
    time.sleep(2)  # a few evaluations into the ALERTS series
    src = PrometheusSource(type="prometheus", url=stack["prom"], lookback="10m", step="1s")
    records = list(collect(src))
    now = time.time()
    history = [r for r in Client(stack["prom"]).history(src.query, now - 600, now, 1)
               if r["labels"]["alertname"] in EXPECTED]
    assert {r["labels"]["alertname"] for r in history} == set(EXPECTED)
    assert all(r["endsAt"] is None for r in history)  # still firing at the end of the range: no end
    crash = next(r for r in history if r["labels"]["alertname"] == "TestPodCrashLoopBackOff")
    assert crash["annotations"]["lambda_parameters"] == '{"name": "web-7d4f9c6b8-x2x9q", "namespace": "ai", "type": "pod"}'
    assert crash["annotations"]["summary"] == "Test pod web-7d4f9c6b8-x2x9q is in CrashLoopBackOff"
    scale = next(r for r in history if r["labels"]["alertname"] == "TestDeploymentNeedsScaling")
    assert scale["annotations"]["description"] == "Deployment checkout has only  replica, should scale to 3"
    assert examples(records) == (LABELLED, {"Watchdog"})


def test_prometheus_unreachable_is_a_clear_error():
    from sre_llm.collect.http import Unreachable

    port = free_port()
    src = PrometheusSource(type="prometheus", url=f"http://127.0.0.1:{port}", lookback="5m", step="1m")
    with pytest.raises(Unreachable) as exc:
        list(collect(src, retries=2, backoff_s=0.01))
    assert str(exc.value).startswith(f"prometheus: http://127.0.0.1:{port}/api/v1/rules: unreachable after 3 attempts (")
    assert exc.value.exit_code == 1


class RecordingProxy:
    """Between Alertmanager and the receiver: remembers every payload the receiver answered 200."""

    def __init__(self, port: int, upstream: int):
        self.acked: list[str] = []
        self.failed = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=10)
                    conn.request("POST", "/", body, {"Authorization": self.headers["Authorization"],
                                                     "Content-Type": "application/json"})
                    status = conn.getresponse().status
                except OSError:
                    status = 502
                if status == 200:
                    outer.acked.append(canonical(json.loads(body)))
                else:
                    outer.failed += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def canonical(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def test_sigkill_loses_no_acknowledged_payload(stack):
    tmp = stack["tmp"]
    flood_rules = tmp / "rules.yml"
    flood = "".join(
        f"""  - alert: Flood{i}
    expr: vector(1)
    labels: {{flood: "yes", severity: warning}}
    annotations: {{summary: "flood {i}"}}
""" for i in range(12))
    flood_rules.write_text(RULES + flood)
    store = tmp / "flood-store"
    receiver = Receiver(store, free_port())
    receiver.start()
    proxy = RecordingProxy(stack["proxy_port"], receiver.port)
    try:
        stack["prometheus"].send_signal(signal.SIGHUP)  # reload the rules: the flood starts
        wait_for(lambda: len(proxy.acked) >= 10, 60, "the flood to reach the receiver")
        for _ in range(3):
            time.sleep(0.5)
            seen = len(proxy.acked)
            # Alertmanager sends in bursts (every group flushes on the same tick): kill the
            # receiver right after a burst has begun, so the rest of it hits a dead receiver.
            wait_for(lambda: len(proxy.acked) > seen, 30, "a burst of deliveries", step=0.005)
            receiver.kill()  # SIGKILL while Alertmanager is sending
            time.sleep(0.5)
            receiver.start()
        seen = len(proxy.acked)
        wait_for(lambda: len(proxy.acked) >= seen + 5, 30, "deliveries after the last restart")
    finally:
        receiver.stop()
        proxy.close()
    stored = set()
    for line in (store / "webhook.jsonl").read_text().splitlines():
        try:
            stored.add(canonical(json.loads(line)["payload"]))
        except ValueError:
            pass  # a line cut by the kill was never acknowledged
    lost = [h for h in proxy.acked if h not in stored]
    assert not lost, f"{len(lost)} of {len(proxy.acked)} acknowledged payloads missing"
    assert len(proxy.acked) >= 25
    assert proxy.failed >= 1, "no delivery failed: the kills did not land while Alertmanager was sending"
