"""Action safety and the side calls, through the real gateway app on hypercorn (127.0.0.1):
the per-namespace allow-list, per-target rate limits, the kill switch, decision reports to the
collector (with Alertmanager's own fingerprint), and the shadow stage between two real gateways.
vLLM is a local server answering in vLLM's shape (tests/helpers/fake_vllm.py): what the model
says is set by each test."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from sre_llm.answer import render_output
from sre_llm.answer.fingerprint import fingerprint
from sre_llm.serve import server
from sre_llm.serve.app import create_app
from sre_llm.serve.config import GatewayConfig
from tests.helpers.fake_vllm import FakeVllm, Recorder
from tests.test_serve_adapters import AI

ROOT = Path(__file__).resolve().parent.parent
MODEL = "sre-remediation"
LABELS = {"alertname": "KubePodCrashLooping", "namespace": "payments", "pod": "api-7d9f", "severity": "warning"}
ALERT = {"labels": LABELS, "annotations": {"summary": "Pod api-7d9f is crash looping"}}
RESTART = render_output("pod-restart", {"name": "api-7d9f", "namespace": "payments"})
CHECK = render_output("pod-check-status", {"name": "api-7d9f", "namespace": "payments"})


@pytest.fixture
def stack():
    """Starts fake vLLMs, recorders and gateways; stops them all."""
    started: list = []

    def vllm(text: str) -> FakeVllm:
        started.append(v := FakeVllm(MODEL, text))
        return v

    def recorder(**kw) -> Recorder:
        started.append(r := Recorder(**kw))
        return r

    def gateway(upstream: FakeVllm, revision: str = "sre-remediation-v1-0-0", **overrides) -> str:
        cfg = GatewayConfig(upstream=upstream.url, served_model=MODEL, model_version="1.0.0", revision=revision,
                            **overrides)
        bg = server.Background(create_app(cfg), server.bind("127.0.0.1", 0))
        started.append(bg)
        return bg.url

    yield vllm, recorder, gateway
    for s in reversed(started):
        s.stop() if isinstance(s, server.Background) else s.close()


def ask(url: str, alert: dict = ALERT) -> dict:
    r = httpx.post(f"{url}/api/generate", timeout=30,
                   json={"model": MODEL, "prompt": AI.create_remediation_prompt(alert), "stream": False})
    assert r.status_code == 200, r.text
    return r.json()["sre_llm"]


def metric(url: str, line_start: str) -> float | None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def until(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_fingerprint_is_alertmanagers() -> None:
    recorded = json.loads((ROOT / "tests/fixtures/alertmanager/api-v2-alerts.json").read_text())["alerts"]
    assert len(recorded) == 3
    for alert in recorded:
        assert fingerprint(alert["labels"]) == alert["fingerprint"]
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64's offset basis, as Prometheus' empty label set
    assert fingerprint({"a": "b"}) != fingerprint({"a": "b", "c": ""})


def test_allow_list_by_namespace(stack) -> None:
    vllm, _, gateway = stack
    url = gateway(vllm(RESTART), allowed_functions=(("payments", ("pod-check-status",)), ("*", ("pod-restart",))))
    verdict = ask(url)
    assert verdict["function"] == "none" and verdict["proposed"] == "pod-restart"
    assert verdict["reason"] == ("pod-restart is not allowed in namespace payments by the policy "
                                 "(allowed: pod-check-status)")
    other = {"labels": {**LABELS, "namespace": "shop", "pod": "web-1"}, "annotations": {}}
    assert ask(url, other)["function"] == "none"  # the model named payments/api-7d9f: ungrounded for this alert
    assert metric(url, 'sre_llm_gateway_guard_blocks_total{model_version="1.0.0",reason="namespace_not_allowed"') == 1


def test_rate_limit_per_target(stack) -> None:
    vllm, _, gateway = stack
    url = gateway(vllm(RESTART), rate_limits=("pod-restart=2/1h",))
    assert [ask(url)["function"] for _ in range(2)] == ["pod-restart", "pod-restart"]
    third = ask(url)
    assert third["function"] == "none"
    assert third["reason"] == "rate limit: pod-restart of payments/api-7d9f already 2 times in 1h (limit 2)"
    assert metric(url, 'sre_llm_gateway_guard_blocks_total{model_version="1.0.0",reason="rate_limited"') == 1
    assert metric(url, 'sre_llm_gateway_decisions_total{function="pod-restart"') == 2


def test_kill_switch_makes_every_answer_none_within_seconds(stack, tmp_path: Path) -> None:
    vllm, _, gateway = stack
    model = vllm(RESTART)
    switch = tmp_path / "killswitch"  # a mounted ConfigMap: a folder with one file per key
    switch.mkdir()
    (switch / "enabled").write_text("false")
    url = gateway(model, kill_switch=str(switch), kill_switch_poll_s=0.2)
    assert ask(url)["function"] == "pod-restart"
    calls = model.calls
    (switch / "enabled").write_text("true")
    t0 = time.monotonic()
    verdict = until(lambda: (v := ask(url))["function"] == "none" and v)
    assert time.monotonic() - t0 < 2
    assert verdict["reason"] == f"the kill switch is on ({switch / 'enabled'}): every answer is none"
    before = model.calls  # once on, vLLM is not asked any more
    assert ask(url)["function"] == "none" and model.calls == before and before >= calls
    assert metric(url, 'sre_llm_gateway_kill_switch{model_version="1.0.0"') == 1
    assert metric(url, 'sre_llm_gateway_guard_blocks_total{model_version="1.0.0",reason="kill_switch"') >= 1
    (switch / "enabled").unlink()  # no ConfigMap key: off
    until(lambda: ask(url)["function"] == "pod-restart")


def test_decisions_reach_the_collector_and_never_slow_the_answer(stack, tmp_path: Path) -> None:
    vllm, recorder, gateway = stack
    collector = recorder()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    from sre_llm.serve.options import config_fields

    url = gateway(vllm(RESTART), **config_fields({"collector": collector.url, "collector_token_file": str(token)}))
    assert ask(url)["function"] == "pod-restart"
    post = until(lambda: collector.posts and collector.posts[0])
    assert post["path"] == "/decisions" and post["auth"] == "Bearer s3cret"
    body = post["body"]
    assert set(body) == {"fingerprint", "revision", "model_version", "function", "at"}
    assert (body["fingerprint"], body["revision"], body["model_version"], body["function"]) == \
        ("8acd03454a84c640", "sre-remediation-v1-0-0", "1.0.0", "pod-restart")  # Alertmanager's, from the fixture
    until(lambda: metric(url, 'sre_llm_gateway_sidecalls_total{model_version="1.0.0",revision="sre-remediation-v1-0-0",target="collector"}'))

    # A collector that hangs: answers stay fast, the queue (1) overflows and drops are counted.
    slow = recorder(delay_s=3.0)
    url = gateway(vllm(RESTART), collector=slow.url, collector_queue=1)
    t0 = time.monotonic()
    for _ in range(5):
        ask(url)
    assert time.monotonic() - t0 < 2.5
    assert metric(url, 'sre_llm_gateway_sidecall_dropped_total{model_version="1.0.0",reason="queue_full",'
                       'revision="sre-remediation-v1-0-0",target="collector"}') >= 2
    # A collector that refuses: counted by reason, the answer is unchanged.
    url = gateway(vllm(RESTART), collector=recorder(status=503).url)
    assert ask(url)["function"] == "pod-restart"
    until(lambda: metric(url, 'sre_llm_gateway_sidecall_dropped_total{model_version="1.0.0",reason="_Failed"'))


def test_shadow_stage_compares_and_never_acts(stack) -> None:
    vllm, recorder, gateway = stack
    collector = recorder()
    challenger_model = vllm(CHECK)
    challenger = gateway(challenger_model, revision="sre-remediation-v2-0-0", collector=collector.url,
                         rate_limits=("pod-check-status=1/1h",))
    champion = gateway(vllm(RESTART), collector=collector.url, shadow=challenger)
    for _ in range(3):
        verdict = ask(champion)
        assert verdict["function"] == "pod-restart"  # the client only ever gets the champion's answer
    line = ('sre_llm_shadow_decisions_total{agree="false",model_version="1.0.0",revision="sre-remediation-v1-0-0",'
            'shadow_revision="sre-remediation-v2-0-0"}')
    assert until(lambda: metric(champion, line) == 3)
    assert challenger_model.calls == 3
    # The challenger acted on nothing: no report of its own (only the champion's 3), no rate limit used.
    until(lambda: len(collector.posts) == 3)
    time.sleep(0.3)
    assert {p["body"]["revision"] for p in collector.posts} == {"sre-remediation-v1-0-0"}
    assert ask(challenger)["function"] == "pod-check-status"  # its 1/1h budget was untouched by the shadow copies
    # Agreement: a challenger that answers like the champion.
    challenger_model.text = RESTART
    ask(champion)
    assert until(lambda: metric(champion, line.replace('agree="false"', 'agree="true"')) == 1)
    # A shadow URL that routes back to this same revision (Knative's tag route after promotion) compares nothing.
    same = gateway(vllm(RESTART), revision="sre-remediation-v1-0-0")
    champion = gateway(vllm(RESTART), shadow=same)
    ask(champion)
    assert until(lambda: metric(champion, 'sre_llm_gateway_sidecall_dropped_total{model_version="1.0.0",reason="self"'))
    assert metric(champion, "sre_llm_shadow_decisions_total{") is None


def test_openai_clients_need_the_token_agent_sres_ollama_client_does_not(stack) -> None:
    """With a client token, /v1/* answers 401 (OpenAI's error shape) without the right bearer;
    /api/* (agent-sre's Ollama client sends no header) and the ops endpoints stay open."""
    vllm, _, gateway = stack
    url = gateway(vllm(RESTART), client_token="s3cret")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": AI.create_remediation_prompt(ALERT)}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = httpx.post(f"{url}/v1/chat/completions", json=chat, headers=headers, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 401
    ok = httpx.post(f"{url}/v1/chat/completions", json=chat, headers={"Authorization": "Bearer s3cret"}, timeout=30)
    assert ok.status_code == 200, ok.text
    assert ask(url)["function"] == "pod-restart"  # Ollama's surface: no token asked
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert metric(url, 'sre_llm_gateway_requests_total{model_version="1.0.0",protocol="openai",revision="sre-remediation-v1-0-0",status="401"}') == 4


def test_a_client_cannot_use_the_shadow_header_to_get_around_the_policy(stack, tmp_path: Path) -> None:
    """A shadow copy skips the policy and the kill switch (the champion compares the model's answer),
    so what it returns is always no action: a client that sets the header itself gets nothing to run."""
    from sre_llm.serve.sidecalls import SHADOW_HEADER

    vllm, _, gateway = stack
    switch = tmp_path / "killswitch"
    switch.mkdir()
    (switch / "enabled").write_text("true")
    url = gateway(vllm(RESTART), kill_switch=str(switch), allowed_functions=(("payments", ("pod-check-status",)),))
    r = httpx.post(f"{url}/api/generate", headers={SHADOW_HEADER: "1"}, timeout=30,
                   json={"model": MODEL, "prompt": AI.create_remediation_prompt(ALERT), "stream": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert json.loads(body["response"])["lambda_function"] is None  # agent-sre's "no action"
    assert body["sre_llm"]["function"] == "none" and body["sre_llm"]["reason"].startswith("shadow copy")
    assert body["sre_llm"]["shadow"]["function"] == "pod-restart"  # only for the champion's comparison
    # The same request without the header: the kill switch answers (no action, and no model call needed).
    plain = httpx.post(f"{url}/api/generate", timeout=30,
                       json={"model": MODEL, "prompt": AI.create_remediation_prompt(ALERT), "stream": False}).json()
    assert plain["sre_llm"]["function"] == "none" and "shadow" not in plain["sre_llm"]
