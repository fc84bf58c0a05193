"""A real Alertmanager on 127.0.0.1 sends firing and resolved notifications to `sre-llm collect
serve`; `dataset build` labels `none` only the alert that resolved on its own within the window,
and the webhook-only alerts with no evidence are unlabelled (issue 12, item 3)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from test_collect_live import ALERTMANAGER, TOKEN, Receiver, free_port, http_ok, wait_for

from sre_llm.answer import parse_output
from sre_llm.collect.alertmanager import read_store

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not ALERTMANAGER, reason="prometheus-alertmanager binary absent (apt-get install prometheus-alertmanager)")]


def cli(main, *args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_none_only_where_the_alert_resolved_on_its_own(tmp_path, capsys):
    aport, rport = free_port(), free_port()
    (tmp_path / "alertmanager.yml").write_text(f"""
global: {{resolve_timeout: 1m}}
route:
  receiver: sre-llm
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: sre-llm
  webhook_configs:
  - url: http://127.0.0.1:{rport}/
    send_resolved: true
    http_config: {{authorization: {{credentials: {TOKEN}}}}}
""")
    receiver = Receiver(tmp_path / "store", rport)
    receiver.start()
    with open(tmp_path / "am.log", "w") as log:
        am = subprocess.Popen([ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}",
                               f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{aport}",
                               "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{aport}/-/ready"), 30, "alertmanager ready")
        now = datetime.now(timezone.utc)
        soon = now + timedelta(seconds=3)

        def alert(name: str, start: datetime, end: datetime, **ann: str) -> dict:
            return {"labels": {"alertname": name, "namespace": "shop", "severity": "warning"},
                    "annotations": {"summary": f"{name} in shop", **ann},
                    "startsAt": stamp(start), "endsAt": stamp(end), "generatorURL": "http://prometheus/graph"}

        alerts = [
            alert("Blip", now, soon),  # resolves on its own three seconds in: none
            alert("Stuck", now, now + timedelta(hours=1)),  # still firing: unlabelled
            alert("Slow", now - timedelta(minutes=30), soon),  # resolves, but after 30 minutes: unlabelled
            alert("Crash", now, now + timedelta(hours=1), lambda_function="pod-restart",
                  lambda_parameters='{"name": "web", "namespace": "shop", "type": "deployment"}'),
        ]
        req = urllib.request.Request(f"http://127.0.0.1:{aport}/api/v2/alerts", json.dumps(alerts).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
        assert urllib.request.urlopen(req, timeout=5).status == 200

        def resolved() -> set[str]:
            if not (tmp_path / "store").is_dir():
                return set()
            return {r["labels"]["alertname"] for r in read_store(tmp_path / "store")
                    if isinstance(r, dict) and r.get("status") == "resolved"}

        wait_for(lambda: resolved() == {"Blip", "Slow"}, 30, "Alertmanager's resolved notifications for Blip and Slow")
    finally:
        am.terminate()
        am.wait(15)
        receiver.stop()
    records = list(read_store(tmp_path / "store"))
    firing = {r["labels"]["alertname"] for r in records if r["status"] == "firing"}
    assert firing == {"Blip", "Stuck", "Slow", "Crash"}  # every alert was delivered firing first
    assert all(r["endsAt"] is None for r in records if r["status"] == "firing")

    from sre_llm.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "sre-llm/v1", "kind": "ModelRelease", "metadata": {"name": "live", "version": "0.1.0"},
        "spec": {"base_model": {"path": "models/x", "family": "qwen2"},
                 "dataset": {"name": "live", "sources": [{"type": "alertmanager", "store": "store"}], "min_examples": 1,
                             "labelling": {"self_resolve_window": "15m"}}}}))
    assert cli(main, "dataset", "build", str(spec), "--root", str(tmp_path), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    stats = out["card"]["stats"]
    assert stats["evidence"] == {"none": {"self_resolved": 1}, "pod-restart": {"annotation": 1}}
    assert stats["unlabelled"] == 2
    rows = [json.loads(line) for s in ("train", "validation", "test")
            for line in (tmp_path / f"datasets/live/current/{s}.jsonl").read_text().splitlines()]
    got = {r["input"].splitlines()[0].removeprefix("alertname: "): parse_output(r["output"])[0] for r in rows}
    assert got == {"Blip": "none", "Crash": "pod-restart"}

    assert cli(main, "dataset", "unlabelled", str(spec), "--root", str(tmp_path), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(a["alertname"] for a in listed["alerts"]) == ["Slow", "Stuck"]
