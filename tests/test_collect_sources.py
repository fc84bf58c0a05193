"""Collectors without external daemons: the webhook receiver in-process, runbook logs, Linear
(a local HTTP server replaying recorded GraphQL pages) and git (real repositories in tmp_path)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sre_llm.collect import git as git_collector
from sre_llm.collect import linear
from sre_llm.collect.alertmanager import STORE_FILE, make_server, read_store
from sre_llm.collect.http import Unreachable, request_json
from sre_llm.collect.runbook import read_logs
from sre_llm.answer.format import parse_output
from sre_llm.dataset.pipeline import Settings, run
from sre_llm.dataset.records import Quarantined
from sre_llm.dataset.redact import Redactor
from sre_llm.dataset.split import SPLITS
from sre_llm.errors import BadInput
from sre_llm.spec.model import GitSource, LinearSource

FIXTURES = Path(__file__).parent / "fixtures" / "dataset"

PAYLOAD = {  # every field Alertmanager's webhook (version 4) sends: the receiver refuses less
    "version": "4", "receiver": "sre-llm", "status": "firing", "groupKey": "{}:{alertname=\"X\"}",
    "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
    "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop",
                                               "pod": "web-7d4f9c6b8-x2x9q"},
                "annotations": {"summary": "crash", "lambda_function": "pod-restart",
                                "lambda_parameters": '{"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}'},
                "startsAt": "2025-05-01T12:00:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "0123456789abcdef", "generatorURL": "http://prom/graph"},
               {"status": "resolved", "labels": {"alertname": "Old"}, "annotations": {},
                "startsAt": "2025-05-01T11:00:00Z", "endsAt": "2025-05-01T11:30:00Z", "fingerprint": "0b61515ec780e6a5",
                "generatorURL": ""}],
}


@pytest.fixture
def receiver(tmp_path):
    server = make_server(tmp_path / "store", "127.0.0.1:0", token="s3cret")
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield server, tmp_path / "store"
    server.shutdown()
    server.server_close()


def post(server, body: bytes, token: str | None = "s3cret", scheme: str = "http") -> tuple[int, dict]:
    host, port = server.server_address[:2]
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=5, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    conn.request("POST", "/", body, headers)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def test_receiver_stores_before_answering(receiver):
    server, store = receiver
    status, body = post(server, json.dumps(PAYLOAD).encode())
    assert (status, body) == (200, {"status": "ok", "message": "stored 2 alert(s)"})
    lines = (store / STORE_FILE).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["payload"] == PAYLOAD
    assert oct((store / STORE_FILE).stat().st_mode & 0o777) == "0o600"
    records = list(read_store(store))
    assert records[0]["startsAt"] == "2025-05-01T12:00:00.123456789Z" and records[0]["endsAt"] is None
    # A resolved notification is kept: its endsAt is evidence (here 30 minutes: not self-resolved).
    assert (records[1]["status"], records[1]["endsAt"]) == ("resolved", "2025-05-01T11:30:00Z")
    res = run(records, Settings(name="t", min_examples=1), Redactor())
    assert [parse_output(r["output"]) for s in SPLITS for r in res.rows(s)] == [
        ("pod-restart", {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"})]
    assert [r["alertname"] for r in res.unlabelled] == ["Old"]


@pytest.mark.parametrize("token,body,code,message", [
    (None, b"{}", 401, "missing or wrong bearer token"),
    ("wrong", b"{}", 401, "missing or wrong bearer token"),
    ("s3cret", b"not json", 400, "body is not JSON"),
    ("s3cret", b'{"version": "4", "receiver": "r", "status": "firing", "alerts": {}}', 422,
     "alerts: expected a list (got dict); groupLabels: required; commonLabels: required; commonAnnotations: required; "
     "externalURL: required; groupKey: required; truncatedAlerts: required"),
])
def test_receiver_refuses(receiver, token, body, code, message):
    server, store = receiver
    assert post(server, body, token) == (code, {"status": "error", "message": message})
    assert not (store / STORE_FILE).exists()


def test_receiver_answers_503_when_it_cannot_store(receiver):
    server, store = receiver
    (store / STORE_FILE).mkdir(parents=True)  # the store file cannot be opened for appending
    status, body = post(server, json.dumps(PAYLOAD).encode())
    assert (status, body["message"]) == (503, "cannot store the payload; retry later")


def test_receiver_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    server = make_server(tmp_path / "store", "127.0.0.1:0", token="t", tls_cert=str(cert), tls_key_file=str(key))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        assert post(server, json.dumps(PAYLOAD).encode(), "t", scheme="https")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_read_store_quarantines_a_cut_line(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    good = json.dumps({"received": "2025-05-01T12:00:00Z", "payload": PAYLOAD})
    (store / STORE_FILE).write_text(good + "\n" + good[:40])
    out = list(read_store(store))
    assert isinstance(out[-1], Quarantined) and out[-1]["reason"] == "not a stored webhook payload (cut short?)"
    assert out[-1]["where"] == f"{store / STORE_FILE}:2"
    with pytest.raises(BadInput, match="no such folder"):
        list(read_store(tmp_path / "nope"))


def test_runbook_logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text(json.dumps({
        "timestamp": "2025-05-01T12:00:40Z", "lambda_function": "pod-restart", "outcome": "success",
        "parameters": {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"},
        "alert": {"labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d4f9c6b8-x2x9q"},
                  "annotations": {"summary": "crash"}, "startsAt": "2025-05-01T12:00:00Z"}}) + "\n{broken\n")
    recs = list(read_logs("logs/*.jsonl", tmp_path))
    assert recs[0]["kind"] == "action" and recs[0]["source"] == "runbook"
    assert isinstance(recs[1], Quarantined) and recs[1]["where"] == f"{logs / 'a.jsonl'}:2"
    res = run(recs, Settings(name="t", min_examples=1), Redactor())
    assert res.stats["labels"] == {"runbook": 1} and res.stats["outcomes"] == {"success": 1}
    assert res.stats["quarantined"]["reasons"] == {"not JSON: Expecting property name enclosed in double quotes": 1}
    with pytest.raises(BadInput, match="runbook source nothing/\\*.jsonl: no file matches"):
        list(read_logs("nothing/*.jsonl", tmp_path))


class LinearReplay:
    """A local GraphQL endpoint answering with recorded pages, keyed by the ``after`` cursor."""

    def __init__(self, pages: dict):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"auth": self.headers.get("Authorization"), **doc})
                body = json.dumps(pages[doc["variables"]["after"]]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_linear_relay_pagination(monkeypatch):
    pages = {None: json.loads((FIXTURES / "linear/page1.json").read_text()),
             "cursor-page-1": json.loads((FIXTURES / "linear/page2.json").read_text())}
    replay = LinearReplay(pages)
    monkeypatch.setenv("LINEAR_TOKEN", "lin_api_test")
    try:
        src = LinearSource(type="linear", url=replay.url, token="env:LINEAR_TOKEN", team="SRE", lookback="30d")
        now = 1746403200.0  # 2025-05-05T00:00:00Z
        recs = list(linear.collect(src, now=now))
    finally:
        replay.close()
    assert [r["variables"]["after"] for r in replay.requests] == [None, "cursor-page-1"]
    assert all(r["auth"] == "lin_api_test" and r["variables"]["first"] == 50 for r in replay.requests)
    assert replay.requests[0]["variables"]["filter"] == {
        "completedAt": {"gt": "2025-04-05T00:00:00.000Z"}, "team": {"key": {"eq": "SRE"}}}
    assert [r["id"] for r in recs] == ["SRE-101", "SRE-102", "SRE-103"]
    assert recs[0]["lambda_function"] == "pod-restart" and recs[0]["fingerprint"] == "8f1c2b3a4d5e6f70"
    assert recs[0]["parameters"] == {"name": "checkout-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}
    assert "lambda_function" not in recs[1]
    assert recs[2]["lambda_function"] == "flux-reconcile-kustomization"
    assert recs[2]["labels"] == {"alertname": "FluxKustomizationReconciliationFailed", "namespace": "flux-system"}
    # joined with the alert it names: the Linear resolution labels it
    alert = {"kind": "alert", "source": "alertmanager", "fingerprint": "ffff000011112222",
             "labels": {"alertname": "FluxKustomizationReconciliationFailed", "namespace": "flux-system",
                        "name": "apps", "kind": "Kustomization"},
             "annotations": {"summary": "apps failed"}, "startsAt": "2025-05-03T09:00:00Z", "endsAt": "2025-05-03T09:29:00Z"}
    res = run(recs + [alert], Settings(name="t", min_examples=1), Redactor())
    assert res.stats["labels"] == {"linear": 1}
    assert [parse_output(r["output"]) for s in SPLITS for r in res.rows(s)] == [
        ("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"})]


def test_linear_errors_are_clear(monkeypatch):
    replay = LinearReplay({None: {"errors": [{"message": "Authentication required"}]}})
    monkeypatch.setenv("LINEAR_TOKEN", "bad")
    try:
        with pytest.raises(Unreachable, match="^linear: Authentication required$"):
            list(linear.collect(LinearSource(type="linear", url=replay.url, token="env:LINEAR_TOKEN")))
    finally:
        replay.close()


def test_http_retries_then_gives_up():
    sleeps: list[float] = []
    with pytest.raises(Unreachable) as exc:
        request_json("http://127.0.0.1:9/x?token=abc", what="test", retries=3, backoff_s=0.5, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0]
    assert "token=abc" not in str(exc.value) and str(exc.value).startswith("test: http://127.0.0.1:9/x: unreachable after 4 attempts")


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


def test_git_merged_commits_touching_paths(tmp_path):
    repo = tmp_path / "infra"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "sre@example.com")
    git(repo, "config", "user.name", "SRE")

    def commit(path: str, message: str, when: str) -> str:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(message)
        git(repo, "add", path)
        git(repo, "commit", "-q", "-m", message, env={"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when})
        return git(repo, "rev-parse", "HEAD")

    commit("clusters/prod/apps.yaml", "old change", "2024-01-01T00:00:00Z")
    commit("docs/readme.md", "docs only\n\nFixes SRE-1", "2025-05-01T00:00:00Z")
    fix = commit("clusters/prod/apps.yaml",
                 "Bump apps\n\nFixes SRE-103\nAlertname: FluxKustomizationReconciliationFailed\nNamespace: flux-system\n"
                 "LambdaFunction: flux-reconcile-kustomization\nParameters: {\"name\": \"apps\", \"namespace\": \"flux-system\"}",
                 "2025-05-03T09:10:00Z")
    git(repo, "checkout", "-q", "-b", "feature")
    commit("clusters/prod/unmerged.yaml", "not merged", "2025-05-03T10:00:00Z")
    git(repo, "checkout", "-q", "main")
    src = GitSource(type="git", repo=str(repo), paths=["clusters"], branch="main", lookback="30d")
    recs = list(git_collector.collect(src, now=1746403200.0))
    assert [r["id"] for r in recs] == [fix]
    r = recs[0]
    assert r["incident"] == "SRE-103" and r["lambda_function"] == "flux-reconcile-kustomization"
    assert r["parameters"] == {"name": "apps", "namespace": "flux-system"} and r["files"] == ["clusters/prod/apps.yaml"]
    assert r["labels"] == {"alertname": "FluxKustomizationReconciliationFailed", "namespace": "flux-system"}
    with pytest.raises(BadInput, match="no branch 'develop'"):
        list(git_collector.collect(GitSource(type="git", repo=str(repo), branch="develop")))
    with pytest.raises(BadInput, match="not a git repository"):
        list(git_collector.collect(GitSource(type="git", repo=str(tmp_path / "nope"))))
