"""Labels that are true: evidence per label, `unlabelled` instead of a silent `none`, the
`labels` source and the `dataset unlabelled` round trip."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from sre_llm.answer import parse_output
from sre_llm.cli import main
from sre_llm.dataset import labelfile
from sre_llm.dataset.card import markdown
from sre_llm.dataset.pipeline import Settings, run
from sre_llm.dataset.records import fingerprint, webhook_alerts
from sre_llm.dataset.redact import Redactor
from sre_llm.dataset.split import SPLITS
from sre_llm.errors import BadInput

S = Settings(name="t", min_examples=0, self_resolve_s=900)
POD = {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}


def alert(name="KubePodCrashLooping", ns="shop", start="2025-05-01T12:00:00Z", end=None, status="firing", fn=None,
          params=None, **labels):
    labels = {"alertname": name, "namespace": ns, **labels}
    ann = {"summary": f"{name} in {ns}"}
    if fn:
        ann["lambda_function"] = fn
        ann["lambda_parameters"] = json.dumps(params or {})
    return {"kind": "alert", "source": "alertmanager", "fingerprint": fingerprint(labels), "status": status,
            "labels": labels, "annotations": ann, "startsAt": start, "endsAt": end}


def answers(res) -> dict[str, tuple]:
    """alertname → (function, params) of every example."""
    out = {}
    for s in SPLITS:
        for row in res.rows(s):
            out[row["input"].splitlines()[0].removeprefix("alertname: ")] = parse_output(row["output"])
    return out


def test_no_evidence_is_unlabelled_not_none():
    res = run([alert("A"), alert("B", end="2025-05-01T13:00:00Z")], S, Redactor())
    assert answers(res) == {} and res.stats["examples"] == 0
    assert sorted((r["alertname"], r["endsAt"]) for r in res.unlabelled) == [("A", ""), ("B", "2025-05-01T13:00:00Z")]
    assert res.stats["unlabelled"] == 2 and res.stats["evidence"] == {}


def test_self_resolved_within_window_is_none():
    recs = [alert("Quick", end="2025-05-01T12:15:00Z"),  # 15m: on the edge, inside
            alert("Slow", end="2025-05-01T12:15:01Z"),
            alert("Open")]
    res = run(recs, S, Redactor())
    assert answers(res) == {"Quick": ("none", {})}
    assert res.stats["evidence"] == {"none": {"self_resolved": 1}} and res.stats["labels"] == {"self_resolved": 1}
    assert sorted(r["alertname"] for r in res.unlabelled) == ["Open", "Slow"]
    never = run(recs, Settings(name="t", min_examples=0, self_resolve_s=None), Redactor())
    assert never.stats["examples"] == 0 and never.stats["unlabelled"] == 3


def test_resolved_notification_ends_the_firing_one():
    firing = alert("Flap", start="2025-05-01T12:00:00.5Z")
    resolved = dict(firing, status="resolved", endsAt="2025-05-01T12:04:00Z")
    stuck = alert("Stuck", start="2025-05-01T12:00:00Z")
    res = run([firing, stuck, firing, resolved], S, Redactor())  # repeat notifications, resolved last
    assert answers(res) == {"Flap": ("none", {})}
    assert res.stats["evidence"] == {"none": {"self_resolved": 1}}
    assert [r["alertname"] for r in res.unlabelled] == ["Stuck"]


def test_an_action_or_a_human_resolution_is_not_resolving_on_its_own():
    quick = alert("Crash", end="2025-05-01T12:03:00Z", pod="web-7d4f9c6b8-x2x9q")
    acted = {"kind": "action", "source": "runbook", "fingerprint": quick["fingerprint"], "lambda_function": "pod-restart",
             "parameters": POD, "outcome": "success", "timestamp": "2025-05-01T12:01:00Z"}
    res = run([quick, acted], S, Redactor())
    assert answers(res) == {"Crash": ("pod-restart", POD)} and res.stats["evidence"] == {"pod-restart": {"action": 1}}
    human = {"kind": "resolution", "source": "linear", "id": "SRE-1", "timestamp": "2025-05-01T12:02:00Z",
             "labels": {"alertname": "Crash", "namespace": "shop"}}
    res = run([quick, human], S, Redactor())
    assert res.stats["examples"] == 0 and [r["alertname"] for r in res.unlabelled] == ["Crash"]


def test_explicit_no_action_marks_are_none():
    ann = alert("Watchdog", fn="none")
    act = alert("InfoInhibitor", ns="monitoring")
    mark = {"kind": "action", "source": "runbook", "labels": {"alertname": "InfoInhibitor", "namespace": "monitoring"},
            "lambda_function": "none", "parameters": {}, "outcome": "success", "timestamp": "2025-05-01T12:00:30Z"}
    res = run([ann, act, mark], S, Redactor())
    assert answers(res) == {"Watchdog": ("none", {}), "InfoInhibitor": ("none", {})}
    assert res.stats["evidence"] == {"none": {"action": 1, "annotation": 1}}


def test_labels_rows_are_the_strongest_evidence():
    a = alert("Crash", fn="pod-check-status", params={"name": "web", "namespace": "shop"})
    b = alert("Crash", start="2025-05-01T14:00:00Z", ns="data")
    c = alert("Other", start="2025-05-01T15:00:00Z")
    rows = [
        {"kind": "label", "source": "labels", "fingerprint": a["fingerprint"], "startsAt": a["startsAt"],
         "lambda_function": "pod-restart", "parameters": POD},
        {"kind": "label", "source": "labels", "alertname": "Crash", "namespace": "data", "startsAt": "2025-05-01T14:00:00Z",
         "lambda_function": "none", "parameters": {}},
        {"kind": "label", "source": "labels", "fingerprint": c["fingerprint"], "lambda_function": "none"},
    ]
    res = run([a, b, c, *rows], S, Redactor())
    got = sorted(o for s in SPLITS for o in (parse_output(r["output"]) for r in res.rows(s)))
    assert got == [("none", {}), ("none", {}), ("pod-restart", POD)]  # the row beat the annotation
    assert res.stats["evidence"] == {"none": {"labels": 2}, "pod-restart": {"labels": 1}}
    assert res.stats["unlabelled"] == 0


def test_card_shows_evidence_and_unlabelled():
    res = run([alert("Quick", end="2025-05-01T12:05:00Z"), alert("Open"), alert("W", fn="none")], S, Redactor())
    card = {"name": "d", "digest": "0" * 16, "release": "r 1", "spec": "", "sources": ["alertmanager"],
            "encryption": None, "stats": res.stats, "files": {}}
    md = markdown(card)
    assert ("| LambdaFunction | labels | action | annotation | self_resolved |\n|---|---:|---:|---:|---:|\n"
            "| none | 0 | 0 | 1 | 1 |\n") in md
    assert "- unlabelled (no evidence; in no split, never `none`): 1 alert firing(s);" in md


# ── the labels file ───────────────────────────────────────────────────────────────────────────


def test_labels_file_round_trip_csv_and_jsonl(tmp_path):
    rows = [{"fingerprint": "0123456789abcdef", "alertname": "A", "namespace": "shop", "startsAt": "2025-05-01T12:00:00Z",
             "endsAt": "", "source": "alertmanager", "alert": "alertname: A\nsummary: a, \"quoted\""}]
    for fmt in labelfile.FORMATS:
        text = labelfile.render(rows, fmt)
        filled = text.replace('"lambda_function": "", "lambda_parameters": ""',
                              '"lambda_function": "pod-restart", "lambda_parameters": {"name": "w", "namespace": "shop"}')
        if fmt == "csv":
            assert text.splitlines()[0] == ",".join(labelfile.COLUMNS)
            table = list(csv.DictReader(io.StringIO(text)))
            assert table[0]["alert"] == rows[0]["alert"]  # a multi-line cell survives
            table[0]["lambda_function"], table[0]["lambda_parameters"] = "pod-restart", '{"name": "w", "namespace": "shop"}'
            out = io.StringIO()
            w = csv.DictWriter(out, labelfile.COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(table)
            filled = out.getvalue()
        path = tmp_path / f"l.{fmt}"
        path.write_text(filled)
        (rec,) = labelfile.read(path.name, tmp_path)
        assert rec == {"kind": "label", "source": "labels", "where": f"{path}:2" if fmt == "csv" else f"{path}:1",
                       "fingerprint": "0123456789abcdef", "alertname": "A", "namespace": "shop",
                       "startsAt": "2025-05-01T12:00:00Z", "lambda_function": "pod-restart",
                       "parameters": {"name": "w", "namespace": "shop"}}
        path.write_text(text)  # nothing filled in: nothing read, no error
        assert list(labelfile.read(str(path))) == []


def test_labels_file_problems_all_at_once(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "fingerprint,alertname,namespace,startsAt,lambda_function,lambda_parameters\n"
        "0123456789abcdef,,,,pod-restrat,\n"
        "xyz,A,,,none,\n"
        ",A,shop,yesterday,none,\n"
        ",A,shop,,none,\n"
        "0123456789abcdef,,,,scale-deployment,\"{\"\"name\"\": \"\"w\"\"}\"\n"
        "0123456789abcdef,,,,none,[1]\n"
        "0123456789abcdef,,,2025-05-01T12:00:00Z,,\n")
    with pytest.raises(BadInput) as exc:
        list(labelfile.read(str(path)))
    assert str(exc.value).splitlines() == [
        (f"{path}:2: unknown LambdaFunction 'pod-restrat' (known: check-pvc-status, flux-reconcile-gitrepository, "
         "flux-reconcile-helmrelease, flux-reconcile-kustomization, pod-check-status, pod-restart, scale-deployment, none)"),
        f"{path}:3: fingerprint: expected 16 hex digits, Alertmanager's (got 'xyz')",
        f"{path}:4: startsAt: not an RFC 3339 time (got 'yesterday')",
        f"{path}:5: names no alert: give fingerprint, or alertname and startsAt",
        f"{path}:6: scale-deployment: missing required parameter 'namespace'",
        f"{path}:6: scale-deployment: missing required parameter 'replicas'",
        f"{path}:7: lambda_parameters: must be a JSON object (got list)",
    ]
    path.write_text("fingerprint,lambda_fuction\n")
    with pytest.raises(BadInput, match=r"labels.csv:1: unknown column 'lambda_fuction' \(did you mean lambda_function\?\)"):
        list(labelfile.read(str(path)))
    with pytest.raises(BadInput, match="labels source nope/\\*.csv: no such file"):
        list(labelfile.read("nope/*.csv", tmp_path))


# ── the command and the round trip ────────────────────────────────────────────────────────────


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_spec(tmp: Path, sources: list[dict]) -> Path:
    doc = {"apiVersion": "sre-llm/v1", "kind": "ModelRelease", "metadata": {"name": "demo", "version": "0.1.0"},
           "spec": {"base_model": {"path": "models/x", "family": "qwen2"},
                    "dataset": {"name": "demo-data", "sources": sources, "min_examples": 1,
                                "labelling": {"self_resolve_window": "10m"}}}}
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def store_webhooks(store: Path, alerts: list[dict]) -> None:
    store.mkdir()
    payload = {"version": "4", "status": "firing", "receiver": "sre-llm", "alerts": alerts}
    (store / "webhook.jsonl").write_text(json.dumps({"received": "2025-05-01T13:00:00Z", "payload": payload}) + "\n")


def test_unlabelled_round_trip(tmp_path, capsys):
    def am(name, start, end=None, **labels):
        labels = {"alertname": name, "namespace": "shop", **labels}
        return {"status": "resolved" if end else "firing", "labels": labels, "annotations": {"summary": name},
                "startsAt": start, "endsAt": end or "0001-01-01T00:00:00Z", "fingerprint": fingerprint(labels)}

    store_webhooks(tmp_path / "store", [
        am("PodCrash", "2025-05-01T12:00:00Z", pod="web-7d4f9c6b8-x2x9q"),
        am("Blip", "2025-05-01T12:00:00Z", "2025-05-01T12:02:00Z"),
        am("DiskSlow", "2025-05-01T12:10:00Z"),
    ])
    spec = write_spec(tmp_path, [{"type": "alertmanager", "store": "store"}])
    root = str(tmp_path)
    assert cli("dataset", "unlabelled", str(spec), "--root", root, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["count"] == 2 and out["labelled"] == 1
    assert [a["alertname"] for a in out["alerts"]] == ["PodCrash", "DiskSlow"]
    assert out["evidence"] == {"none": {"self_resolved": 1}}

    assert cli("dataset", "unlabelled", str(spec), "--root", root, "--out", str(tmp_path / "labels.csv")) == 0
    assert capsys.readouterr().out == f"wrote 2 unlabelled alert(s) to {tmp_path / 'labels.csv'} (1 labelled examples)\n"
    with open(tmp_path / "labels.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["alertname"] for r in table] == ["PodCrash", "DiskSlow"]
    table[0]["lambda_function"] = "pod-restart"
    table[0]["lambda_parameters"] = json.dumps(POD)  # DiskSlow left for later
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, labelfile.COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(table)

    spec = write_spec(tmp_path, [{"type": "alertmanager", "store": "store"}, {"type": "labels", "path": "labels.csv"}])
    assert cli("dataset", "build", str(spec), "--root", root, "--json") == 0
    card = json.loads(capsys.readouterr().out)["card"]
    assert card["stats"]["evidence"] == {"none": {"self_resolved": 1}, "pod-restart": {"labels": 1}}
    assert card["stats"]["unlabelled"] == 1 and card["stats"]["labels"] == {"labels": 1, "self_resolved": 1}
    assert cli("dataset", "unlabelled", str(spec), "--root", root, "--format", "jsonl") == 0
    (left,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert list(left) == list(labelfile.COLUMNS) and left["alertname"] == "DiskSlow" and left["lambda_function"] == ""


def test_unlabelled_bad_input_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path, [{"type": "labels", "path": "labels.csv"}])
    assert cli("dataset", "unlabelled", str(spec), "--root", str(tmp_path)) == 2
    assert capsys.readouterr().err.strip() == f"labels source labels.csv: no such file (relative paths are from {tmp_path})"
    assert cli("dataset", "unlabelled", str(spec), "--out", "x.csv", "--format", "jsonl") == 2
    assert capsys.readouterr().err.strip() == "--out x.csv: the suffix says csv, --format says jsonl"


def test_webhook_alerts_keep_resolved_notifications():
    payload = {"alerts": [
        {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2025-05-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
        {"status": "resolved", "labels": {"alertname": "A"}, "startsAt": "2025-05-01T12:00:00Z", "endsAt": "2025-05-01T12:05:00.1Z"},
        {"status": "weird", "labels": {"alertname": "B"}, "startsAt": "2025-05-01T12:00:00Z"}]}
    got = [(r["status"], r["endsAt"]) for r in webhook_alerts(payload)]
    assert got == [("firing", None), ("resolved", "2025-05-01T12:05:00Z")]
