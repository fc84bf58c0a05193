"""The webhook receiver under load and under a hostile probe: the real `sre-llm collect serve` as a
child process, raw sockets for what no polite client sends.

The probe that motivated it (issue 16): 200 concurrent POSTs → 123 resets; deep nesting and a
lone surrogate → no HTTP answer; `Content-Length: -1` → the 16 MiB cap skipped; 300 idle
sockets → 301 threads; version "3" and a 2 MB label value stored. Each case here gets a 4xx with
a reason (or, for a trickle of headers, a close within the read timeout), and the receiver is
alive and small afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sre_llm.collect.alertmanager import make_server, read_store
from sre_llm.collect.webhook import check
from tests.helpers.webhook_load import (
    TOKEN,
    ReceiverProcess,
    payload,
    post_all,
    request_bytes,
    stored_seqs,
)

READ_TIMEOUT = 1.0
FIXTURE = Path(__file__).parent / "fixtures" / "alertmanager" / "webhook-v4.jsonl"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    r = ReceiverProcess(tmp_path_factory.mktemp("hostile") / "store", read_timeout=READ_TIMEOUT)
    yield r
    r.stop()


def exchange(port: int, data: bytes, wait: float = 5.0, trickle: float | None = None,
             after: bytes = b"") -> tuple[int | None, dict | bytes | None, float]:
    """Send ``data``, then ``after`` byte by byte every ``trickle`` s (stopping when an answer or the
    close arrives); the response's status and body (None: closed without one) and the seconds
    from the connection's start to the answer or close."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        t0 = time.monotonic()
        try:
            s.sendall(data)
            if trickle is not None:
                s.setblocking(False)
                for i in range(len(after)):
                    try:
                        s.send(after[i:i + 1])
                    except BlockingIOError:
                        pass
                    time.sleep(trickle)
                    try:
                        if s.recv(1, socket.MSG_PEEK) is not None:
                            break  # an answer (or EOF) arrived
                    except BlockingIOError:
                        continue
                s.setblocking(True)
                s.settimeout(wait)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return None, None, time.monotonic() - t0
                buf += chunk
        except ConnectionResetError:
            return None, None, time.monotonic() - t0
        elapsed = time.monotonic() - t0
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), 0)
        try:
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        except ConnectionResetError:
            pass
        try:
            return status, json.loads(body), elapsed
        except ValueError:
            return status, body, elapsed


def healthy(port: int) -> bool:
    return exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def valid() -> dict:
    return payload(1)


def with_(**changes) -> bytes:
    p = valid()
    p.update(changes)
    return json.dumps(p).encode()


def raw_head(length: str | None, extra: str = "") -> bytes:
    cl = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{cl}{extra}\r\n".encode()


BIG_LABEL = payload(1)
BIG_LABEL["alerts"][0]["labels"]["big"] = "x" * 2_000_000

CASES = {
    # name: (request bytes, status, message)
    "5000-deep nesting": (request_bytes(b'{"a":' * 5000 + b"1" + b"}" * 5000), 400, "body is nested too deeply"),
    "lone surrogate": (request_bytes(with_(receiver="\ud800")), 400,
                       "body holds an unpaired surrogate escape (not storable as UTF-8)"),
    "not UTF-8": (request_bytes(b'{"receiver": "\xff"}'), 400, "body is not UTF-8 (byte 14)"),
    "NaN": (request_bytes(b'{"truncatedAlerts": NaN}'), 400, "body is not JSON"),
    "Content-Length absent": (raw_head(None) + with_(), 411, "Content-Length required"),
    "Content-Length shorter than the body": (raw_head("10") + with_(), 400, "body is not JSON"),
    "Content-Length 50 MB": (raw_head(str(50 << 20)), 413, f"payload over {16 << 20} bytes"),
    "version 3": (request_bytes(with_(version="3")), 422,
                  'version: only Alertmanager\'s webhook version "4" is accepted (got "3")'),
    "2 MB label value": (request_bytes(json.dumps(BIG_LABEL).encode()), 422,
                         "alerts[0].labels.big: 2000000 characters, over the limit of 4096"),
    "unknown key and bad types": (request_bytes(with_(extra=1, truncatedAlerts="0", alerts=[{"status": "open"}])), 422,
                                  ("extra: unknown key; truncatedAlerts: expected an integer (got str); "
                                   "alerts[0].labels: required; alerts[0].annotations: required; alerts[0].startsAt: "
                                   "required; alerts[0].endsAt: required; alerts[0].fingerprint: required; "
                                   "alerts[0].status: expected firing or resolved (got \"open\")")),
    "no token": (request_bytes(with_(), token=None), 401, "missing or wrong bearer token"),
    "wrong method": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "/ takes POST"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request_gets_a_4xx_with_a_reason(receiver, name):
    data, status, message = CASES[name]
    got = exchange(receiver.port, data)
    assert got[:2] == (status, {"status": "error", "message": message})
    assert healthy(receiver.port)


def test_malformed_content_length_is_refused_by_the_http_layer(receiver):
    status, body, _ = exchange(receiver.port, raw_head("-1") + with_())
    assert (status, body) == (400, b"")  # h11 refuses it before the app: a bare 400, never the cap skipped


def test_content_length_longer_than_the_body_times_out_with_408(receiver):
    data = with_()
    status, body, elapsed = exchange(receiver.port, raw_head(str(len(data) + 100)) + data)
    assert (status, body["message"]) == (408, f"body not received within {READ_TIMEOUT:g}s")
    assert READ_TIMEOUT * 0.8 < elapsed < READ_TIMEOUT + 1.5


def test_chunked_body_over_the_cap_is_cut_at_the_cap(receiver):
    """50 MB sent chunked (no Content-Length): refused once the bytes read pass 16 MiB."""
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"[" * (1 << 20))
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as s:
        s.sendall(raw_head(None, "Transfer-Encoding: chunked\r\n"))
        sent = 0
        try:
            for _ in range(50):
                s.sendall(chunk)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(5)
        try:
            answer = s.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert sent < 50, "the server read all 50 MB"
    # Either the 413 arrived, or the reset that follows it overtook it: the cap held either way.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert healthy(receiver.port)


def test_slowloris_headers_are_closed_within_the_read_timeout(receiver):
    status, _, elapsed = exchange(receiver.port, b"", after=raw_head("2") + b"{}", trickle=0.02)
    assert status is None  # hypercorn closes: no request to answer yet
    assert READ_TIMEOUT * 0.8 < elapsed < READ_TIMEOUT + 1.0


def test_slowloris_body_gets_408_within_the_read_timeout(receiver):
    data = with_()
    status, body, elapsed = exchange(receiver.port, raw_head(str(len(data))), after=data, trickle=0.02)
    assert (status, body["message"]) == (408, f"body not received within {READ_TIMEOUT:g}s")
    assert elapsed < READ_TIMEOUT + 1.0


def test_idle_sockets_cost_no_threads_and_are_closed(receiver):
    socks = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(300)]
    try:
        time.sleep(0.3)
        assert receiver.status("Threads") <= 12  # was one thread per socket
        time.sleep(READ_TIMEOUT + 0.5)
        closed = 0
        for s in socks:
            s.settimeout(2)
            closed += s.recv(1) == b""
        assert closed == 300
    finally:
        for s in socks:
            s.close()


def test_alive_and_small_after_the_probe(receiver):
    """Runs after the hostile cases (file order): the process never died and holds no 50 MB."""
    assert receiver.proc.poll() is None
    assert healthy(receiver.port)
    assert receiver.status("VmRSS") < 160_000, f"{receiver.status('VmRSS')} kB"
    assert not (receiver.store / "webhook.jsonl").exists()  # nothing hostile was stored


def test_500_concurrent_posts_all_stored(tmp_path):
    r = ReceiverProcess(tmp_path / "store")
    try:
        bodies = [json.dumps(payload(n)).encode() for n in range(500)]
        results = asyncio.run(post_all(r.port, bodies, clients=500))
        assert sorted(status for _, _, status in results) == [200] * 500
        assert sorted(stored_seqs(r.store), key=int) == [str(n) for n in range(500)]
        metrics = exchange(r.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[1].decode()
        groups = next(float(l.split()[1]) for l in metrics.splitlines() if l.startswith("sre_llm_receiver_fsync_groups_total"))
        assert groups < 250, f"{groups} fsyncs for 500 payloads: no group commit"
    finally:
        r.stop()


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path):
    r = ReceiverProcess(tmp_path / "store")
    bodies = [json.dumps(payload(n)).encode() for n in range(20_000)]

    async def load_then_kill():
        task = asyncio.ensure_future(post_all(r.port, bodies, clients=50))
        while len(stored_seqs(r.store)) < 300:
            await asyncio.sleep(0.02)
        os.kill(r.pid, signal.SIGKILL)
        return await task

    try:
        results = asyncio.run(load_then_kill())
    finally:
        r.proc.wait()
    acked = {str(i) for i, _, status in results if status == 200}
    failed = sum(status != 200 for _, _, status in results)
    stored = set(stored_seqs(r.store))
    assert len(acked) >= 100 and failed > 0, (len(acked), failed)  # the kill landed mid-load
    assert acked <= stored, f"{len(acked - stored)} acknowledged payloads lost"


def test_real_alertmanager_payloads_pass_the_strict_check():
    payloads = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert [check(p) for p in payloads] == [[], [], []]
    assert {p["alerts"][0]["labels"]["alertname"] for p in payloads} == {
        "TestPodCrashLoopBackOff", "TestDeploymentNeedsScaling", "Watchdog"}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def test_mutual_tls(tmp_path):
    """With a client CA, a client without a certificate signed by it gets no connection."""
    t = tmp_path
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", str(t / "ca.key"), "-out", str(t / "ca.pem"), "-days", "1", "-subj", "/CN=ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "alertmanager")):
        _openssl("req", *ec, "-keyout", str(t / f"{name}.key"), "-out", str(t / f"{name}.csr"), "-subj", f"/CN={cn}")
        ext = t / f"{name}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", str(t / f"{name}.csr"), "-CA", str(t / "ca.pem"), "-CAkey", str(t / "ca.key"),
                 "-CAcreateserial", "-out", str(t / f"{name}.pem"), "-days", "1", "-extfile", str(ext))
    server = make_server(t / "store", "127.0.0.1:0", "tok", str(t / "server.pem"), str(t / "server.key"),
                         tls_client_ca=str(t / "ca.pem"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address

    def post(cert: bool) -> int:
        ctx = ssl.create_default_context(cafile=str(t / "ca.pem"))
        if cert:
            ctx.load_cert_chain(str(t / "client.pem"), str(t / "client.key"))
        with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(request_bytes(json.dumps(payload(7)).encode(), token="tok"))
            return int(s.recv(65536).split(b" ", 2)[1])

    try:
        assert post(cert=True) == 200
        with pytest.raises((ssl.SSLError, ConnectionResetError, IndexError, ValueError)):
            post(cert=False)  # TLS 1.3: the refusal can surface on the first read, not the handshake
        assert [r["labels"]["seq"] for r in read_store(t / "store")] == ["7"]
    finally:
        server.shutdown()
        server.server_close()


# ── decision → outcome (issue 14, collector half) ──────────────────────────────────────────────


def test_fingerprint_is_alertmanagers():
    """Prometheus' LabelSet.Fingerprint (FNV-1a 64), checked against Alertmanager's own values."""
    from sre_llm.dataset.records import fingerprint

    alerts = [a for line in FIXTURE.read_text().splitlines() for a in json.loads(line)["alerts"]]
    assert len(alerts) == 3
    assert [fingerprint(a["labels"]) for a in alerts] == [a["fingerprint"] for a in alerts]
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64's offset basis: nothing hashed
    # The gateway computes the decision's fingerprint with the answer contract's copy: it must agree.
    answer = pytest.importorskip("sre_llm.answer.fingerprint")
    assert [answer.fingerprint(a["labels"]) for a in alerts] == [a["fingerprint"] for a in alerts]


def test_the_gateways_decision_shape_is_accepted():
    """What sre_llm/serve/sidecalls.py's Collector.report posts (its `at` has milliseconds and Z)."""
    from sre_llm.collect.outcomes import check_decision

    d, errors = check_decision({"fingerprint": "3cf3877de38c3d6c", "revision": "sre-llm-00042", "model_version": "1.4.0",
                                "function": "pod-restart", "at": "2026-12-01T17:25:30.123Z"})
    assert errors == [] and d.at == 1796145930.123


def test_outcome_book_joins_by_fingerprint_and_window():
    from sre_llm.collect.outcomes import Decision, OutcomeBook

    book = OutcomeBook(window_s=600, grace_s=60)
    d = lambda fp, at, fn="pod-restart": Decision(fp, "rev-2", "1.4.0", fn, at)
    book.decide(d("a" * 16, 1000))
    book.decide(d("b" * 16, 1000, "scale-deployment"))
    book.decide(d("c" * 16, 1000))
    book.resolved("a" * 16, 1300)  # within the window
    book.resolved("b" * 16, 1700)  # after it: does not count
    book.resolved("e" * 16, 2000)  # a resolution that arrives before its decision (slow gateway)
    book.decide(d("e" * 16, 1900))
    book.expire(1000 + 600 + 59)  # grace not over yet
    assert dict(book.counts) == {("rev-2", "1.4.0", "pod-restart", "resolved"): 2}
    book.expire(1000 + 600 + 60)
    assert dict(book.counts) == {("rev-2", "1.4.0", "pod-restart", "resolved"): 2,
                                 ("rev-2", "1.4.0", "scale-deployment", "unresolved"): 1,
                                 ("rev-2", "1.4.0", "pod-restart", "unresolved"): 1}
    assert not book.open


def _metric(port: int, name: str) -> dict[str, float]:
    text = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[1].decode()
    return {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines() if l.startswith(name + "{")}


def test_decisions_join_resolved_notifications_on_metrics(tmp_path):
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    iso = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    resolved, stuck = payload(1), payload(2)
    fp_resolved, fp_stuck = resolved["alerts"][0]["fingerprint"], stuck["alerts"][0]["fingerprint"]
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = iso
    decision = lambda fp: json.dumps({"fingerprint": fp, "revision": "sre-llm-00042", "model_version": "1.4.0",
                                      "function": "pod-restart", "at": iso}).encode()
    r = ReceiverProcess(tmp_path / "store", extra=("--outcome-window", "1", "--outcome-grace", "0.5"))
    key = 'sre_llm_remediation_outcomes_total{function="pod-restart",model_version="1.4.0",outcome="%s",revision="sre-llm-00042"}'
    try:
        assert exchange(r.port, request_bytes(decision(fp_resolved), "/decisions"))[:2] == (
            200, {"status": "ok", "message": "recorded"})
        assert exchange(r.port, request_bytes(decision(fp_stuck), "/decisions"))[0] == 200
        assert exchange(r.port, request_bytes(json.dumps(resolved).encode()))[0] == 200
        assert _metric(r.port, "sre_llm_remediation_outcomes_total") == {key % "resolved": 1.0}
        time.sleep(1.6)
        assert _metric(r.port, "sre_llm_remediation_outcomes_total") == {key % "resolved": 1.0, key % "unresolved": 1.0}
        bad = json.dumps({"fingerprint": "XYZ", "revision": "r", "model_version": "1", "function": "f",
                          "at": "yesterday", "extra": 1}).encode()
        assert exchange(r.port, request_bytes(bad, "/decisions"))[:2] == (422, {"status": "error", "message": (
            "extra: unknown key; fingerprint: expected 16 lowercase hex digits (Alertmanager's alert fingerprint); "
            "at: expected an RFC 3339 time with a zone")})
        assert exchange(r.port, request_bytes(decision(fp_stuck), "/decisions", token=None))[0] == 401
    finally:
        r.stop()
    assert [a["labels"]["seq"] for a in read_store(r.store)] == ["1"]  # decisions are not webhook payloads
    again = ReceiverProcess(tmp_path / "store", extra=("--outcome-window", "1", "--outcome-grace", "0.5"))
    try:  # rebuilt from the journals on start
        assert _metric(again.port, "sre_llm_remediation_outcomes_total") == {
            key % "resolved": 1.0, key % "unresolved": 1.0}
    finally:
        again.stop()
