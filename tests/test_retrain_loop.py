"""Two turns of `sre-llm retrain` on the tiny model, with new synthetic alerts arriving in between
through a real Alertmanager feeding `sre-llm collect serve`.

The session's trained tiny model is the first champion (registered, evaluated, signed, promoted in
a git repository in tmp_path). Each turn: the merged dataset keeps every old example in its old
split, the challenger and the champion answer the same rows (the champion's frozen test split plus
the new test slice), and the decision agrees with McNemar's table and the gates it states.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sre_llm.dataset.split import SPLITS
from tests.registry_support import make_key
from tests.test_collect_live import ALERTMANAGER, Receiver, free_port, http_ok, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not ALERTMANAGER, reason="prometheus-alertmanager absent (apt-get install prometheus-alertmanager)")]
ROOT = Path(__file__).resolve().parent.parent


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _spec(trained: dict[str, Path]) -> str:
    text = trained["spec"].read_text()
    text = re.sub(r"(?m)^(\s+)path: \.cache/models/tiny-qwen2$", rf"\g<1>path: {trained['base']}", text)
    text = re.sub(r"(?m)^(\s+)seed: 7\n", r"\g<0>      - type: alertmanager\n        store: am-store\n", text, count=1)
    text = re.sub(r"(?m)^(\s+)epochs: 2\n", r"\g<0>\g<1>max_steps: 12\n", text, count=1)
    # Gates the session's model (480 examples, two epochs) passes: this test is about the loop.
    for gate, value in (("remediation_accuracy", "0.5"), ("parameter_accuracy", "0.5"), ("false_positive_rate", "0.5")):
        text = re.sub(rf"(?m)^(\s+){gate}: [0-9.]+$", rf"\g<1>{gate}: {value}", text)
    assert "type: alertmanager" in text and "max_steps: 12" in text and "parameter_accuracy: 0.5" in text
    text, n = re.subn(r"(?m)^(\s+)min_new_examples: \d+$", r"\g<1>min_new_examples: 20", text)
    assert n == 1 and "\n    significance: 0.05\n" in text  # the shipped spec's retrain section
    return text


def _post(am: str, alerts: list[dict]) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": a["labels"], "annotations": a.get("annotations") or {},
             "startsAt": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")} for a in alerts]
    req = urllib.request.Request(f"{am}/api/v2/alerts", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def _stored(store: Path) -> set[str]:
    from sre_llm.collect.alertmanager import read_store

    if not store.is_dir():
        return set()
    return {r["fingerprint"] for r in read_store(store) if isinstance(r, dict) and r.get("kind") == "alert"}


def _old_split(folder: Path) -> dict[str, str]:
    return {json.loads(line)["input"]: s for s in SPLITS
            for line in (folder / f"{s}.jsonl").read_text().splitlines() if line.strip()}




@pytest.fixture
def project(tmp_path, trained_tiny):
    """A GitOps repository whose champion is the session's trained tiny model."""
    from sre_llm.dataset.build import build
    from sre_llm.evaluate import harness
    from sre_llm.evaluate.gates import eval_config_path
    from sre_llm.registry import release as rel
    from sre_llm.registry.service import open_registry, register
    from sre_llm.spec.load import load_spec

    repo = tmp_path / "repo"
    (repo / "am-store").mkdir(parents=True)  # `collect serve` creates it too; a turn may come first
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Loop Test")
    _git(repo, "config", "user.email", "loop@example.test")
    (repo / ".gitignore").write_text("runs/\ndatasets/\n.cache/\nam-store/\nrendered/\n")
    spec = repo / "spec.yaml"
    spec.write_text(_spec(trained_tiny))
    make_key(repo / ".cache/keys/signing-key.pem", repo / ".cache/keys/signing-key.pub.pem")
    release = load_spec(spec).release
    built = build(release, root=repo, spec_path="spec.yaml")  # synthetic only so far: the champion's data
    assert _old_split(built.path) == _old_split(trained_tiny["test"].parent)
    subprocess.run([str(ROOT / ".venv/bin/sre-llm"), "render", str(spec)], cwd=repo, check=True, capture_output=True)
    config = eval_config_path(spec, repo / "rendered")
    model = trained_tiny["model"]
    fmt = json.loads((trained_tiny["run"] / "run.json").read_text())["answer_format"]
    result = harness.evaluate(config, model, test=built.path / "test.jsonl", root=repo, baseline="none",
                              adversarial=False, latency_samples=4, answer_format=fmt)
    harness.write_results(result, tmp_path / "champion-eval")
    run = tmp_path / "champion-run.json"
    run.write_text(json.dumps({"run_id": "1", "status": "succeeded", "answer_format": fmt,
                               "dataset": {"name": release.spec.dataset.name, "digest": built.digest}}))
    reg = open_registry(repo)
    register(reg, spec, model, metrics_path=tmp_path / "champion-eval/eval.json", run_path=run)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "spec and registration")
    rel.sign(reg, release.metadata.name, release.metadata.version)
    rel.promote(reg, release.metadata.name, release.metadata.version)
    return {"repo": repo, "spec": spec, "name": release.metadata.name, "champion_data": built.path}


@pytest.fixture
def alertmanager(project, tmp_path):
    """A real Alertmanager routing every alert to `sre-llm collect serve` (the spec's store)."""
    from tests.test_collect_live import TOKEN

    aport, rport = free_port(), free_port()
    (tmp_path / "am.yml").write_text(f"""
route: {{receiver: collect, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
receivers:
- name: collect
  webhook_configs:
  - url: http://127.0.0.1:{rport}/
    http_config: {{authorization: {{credentials: {TOKEN}}}}}
""")
    receiver = Receiver(project["repo"] / "am-store", rport)
    receiver.start()
    proc = subprocess.Popen([ALERTMANAGER, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{aport}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "am.log", "w"))  # noqa: SIM115 - the child holds it
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{aport}/-/ready"), 30, "alertmanager ready")
        yield f"http://127.0.0.1:{aport}"
    finally:
        receiver.stop()
        proc.terminate()
        proc.wait(15)


def _arrive(am: str, store: Path, seed: int, count: int) -> None:
    """New synthetic alerts (another seed: other pods, other incidents) through Alertmanager."""
    from sre_llm.dataset.records import fingerprint
    from sre_llm.dataset.synth import generate

    alerts = [a for a in generate(count, seed) if (a.get("annotations") or {}).get("lambda_function")]
    _post(am, alerts)
    want = {fingerprint(a["labels"]) for a in alerts}
    wait_for(lambda: want <= _stored(store), 60, f"{len(want)} alerts in the receiver's store")


def _check_turn(report: dict, repo: Path, champion_data: Path, min_new: int) -> None:
    data = report["data"]
    assert data["moved"] == 0
    assert data["kept"] + data["dropped"] == len(_old_split(champion_data))
    assert data["new_total"] >= min_new, report["reason"]
    mc = report["mcnemar"]
    frozen = report["slices"]["frozen test"]["examples"]
    assert frozen == sum(1 for _ in (champion_data / "test.jsonl").open())
    assert mc["n"] == frozen + data["new"]["test"]
    better = mc["challenger_only"] > mc["champion_only"] and mc["p_value"] < report["significance"]
    if report["outcome"] == "promoted":
        assert better and report["gates_passed"]
        branch_index = _git(repo, "show", f"{report['branch']}:registry/{report['model']}.yaml")
        assert f"champion: {report['challenger']}" in branch_index
        assert report["challenger"] not in _git(repo, "show", f"HEAD:registry/{report['model']}.yaml").split("champion:")[1].splitlines()[0]
    else:
        assert report["outcome"] == "refused"
        if not better:
            verdict = "is worse than" if mc["champion_only"] > mc["challenger_only"] and mc["p_value"] < report["significance"] \
                else "is not significantly better than"
            assert f"{verdict} champion" in report["reason"] and f"p = {mc['p_value']:.4g}" in report["reason"]
        else:
            assert not report["gates_passed"] and "did not pass its gates" in report["reason"]
        assert not _git(repo, "branch", "--list", "sre-llm/retrain-*")
    md = (repo / "runs" / report["model"] / "retrain").glob("*/report.md")
    assert any(f"p = {mc['p_value']:.4g}" in p.read_text() for p in md)


def test_two_retrain_turns_with_alerts_arriving_between(project, alertmanager):
    from sre_llm.retrain.loop import retrain

    repo, store = project["repo"], project["repo"] / "am-store"
    head = _git(repo, "rev-parse", "HEAD")

    # Turn 0: nothing has arrived yet → refused for too little new data, nothing trained.
    first = retrain(str(project["spec"]), root=repo, mode="incremental").report
    assert first["outcome"] == "refused" and "fewer than retrain.min_new_examples 20" in first["reason"]
    assert first.get("run") is None

    _arrive(alertmanager, store, seed=101, count=90)
    one = retrain(str(project["spec"]), root=repo, mode="incremental").report
    assert one["mode"] == "incremental" and one["challenger"] == "0.1.1"
    _check_turn(one, repo, project["champion_data"], 20)
    print("turn 1:", one["outcome"], one["reason"])
    assert "TestPodCrashLoopBackOff" not in one["data"]["drift"]["new_alertnames"]  # the champion saw that one

    _arrive(alertmanager, store, seed=202, count=60)
    later = time.time() + 31 * 86400  # a month on: the schedule asks for a full retraining
    two = retrain(str(project["spec"]), root=repo, now=later).report
    assert two["mode"] == "full" and "full_every" in two["schedule"]
    assert two["challenger"] == "0.1.2"
    _check_turn(two, repo, project["champion_data"], 20)
    print("turn 2:", two["outcome"], two["reason"])
    assert two["data"]["new_total"] > one["data"]["new_total"]  # both batches are new to the champion
    assert _git(repo, "rev-parse", "HEAD") == head  # promotion happens on branches only


def test_cli_json_and_schedule_skip(project):
    proc = subprocess.run([sys.executable, "-m", "sre_llm", "retrain", str(project["spec"]), "--root", str(project["repo"]),
                           "--json"], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and out["report"]["outcome"] == "skipped"
    assert "under retrain.incremental_every 7d" in out["report"]["reason"]


def test_promotion_branch_commits_there_and_leaves_head_alone(tmp_path):
    """The promoted path without training: a registered challenger whose gates passed is signed
    here and promoted on a new branch; HEAD, the work tree's index and the champion stay put."""
    from sre_llm.registry import release as rel
    from sre_llm.registry.service import open_registry, register
    from sre_llm.retrain.loop import _promotion_branch
    from tests.registry_support import (
        git,
        make_model,
        make_repo,
        write_metrics,
        write_spec,
    )

    repo = make_repo(tmp_path)
    reg = open_registry(repo)
    spec = repo / "specs/demo.yaml"
    register(reg, spec, make_model(tmp_path / "m1", 1), metrics_path=write_metrics(tmp_path / "e1.json"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "register 1.0.0")
    rel.sign(reg, "demo-model", "1.0.0")
    rel.promote(reg, "demo-model", "1.0.0")
    head = git(repo, "rev-parse", "HEAD").strip()
    write_spec(repo, "1.1.0")
    register(reg, spec, make_model(tmp_path / "m2", 2), metrics_path=write_metrics(tmp_path / "e2.json"))
    before = (repo / "registry/demo-model.yaml").read_text()

    branch, commit = _promotion_branch(reg, repo, "demo-model", "1.1.0", "sre-llm/retrain")
    assert branch == "sre-llm/retrain-demo-model-1.1.0"
    assert git(repo, "rev-parse", branch).strip() == commit
    assert git(repo, "rev-parse", "HEAD").strip() == head  # nothing committed where the user is
    on_branch = git(repo, "show", f"{branch}:registry/demo-model.yaml")
    assert "champion: 1.1.0" in on_branch and "champion: 1.0.0" in git(repo, "show", "HEAD:registry/demo-model.yaml")
    assert git(repo, "show", f"{branch}:registry/demo-model/1.1.0.sig")  # the signature travels with it
    assert "registry: promote demo-model 1.1.0 to champion" in git(repo, "log", "-1", "--format=%s", branch)
    # Here: registered and signed, not promoted; no work tree left behind.
    now = (repo / "registry/demo-model.yaml").read_text()
    assert "champion: 1.0.0" in now and now != before and "status: signed" in now
    assert git(repo, "worktree", "list").count("\n") == 1
