"""The rollout state machine on a real git repository: each stage one commit that changes only
the traffic block, state read back from HEAD by a fresh process, bad moves refused (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_support import changed_files, git, make_repo, run, run_json

from sre_llm.deploy import history

FILES = ["rollouts/demo-model/analysis.json", "rollouts/demo-model/traffic.yaml"]


def _split(repo: Path) -> list[tuple[str, str, int]]:
    doc = yaml.safe_load((repo / "rollouts/demo-model/traffic.yaml").read_text())
    return [(r["tag"], r["revisionName"], r["percent"]) for r in doc["spec"]["traffic"]]


def test_stages_ab_then_steps_each_a_commit_of_the_traffic_block(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    started = run_json(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    assert started["state"]["stage"] == "ab-test" and started["state"]["percent"] == 50
    assert changed_files(repo) == ["rollouts/demo-model/analysis.json", "rollouts/demo-model/kustomization.yaml",
                                   "rollouts/demo-model/traffic.yaml"]
    assert _split(repo) == [("champion", "demo-model-v0-1-0", 50), ("challenger", "demo-model-v0-2-0", 50)]
    seen = []
    for expected in (("step-1", 10), ("step-2", 50), ("step-3", 100)):
        out = run_json(repo, "rollout", "advance", "specs/demo.yaml")
        assert (out["state"]["stage"], out["state"]["percent"]) == expected
        changed_paths = changed_files(repo)
        assert "rollouts/demo-model/traffic.yaml" in changed_paths and set(changed_paths) <= set(FILES)
        # In the manifest only the traffic block (and the annotations naming the stage) changed.
        diff = git(repo, "show", "--format=", "-U0", "HEAD", "--", "rollouts/demo-model/traffic.yaml")
        changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert all(ln[1:].strip().startswith(("percent:", "sre-llm.io/rollout-stage:", "sre-llm.io/stage-started:"))
                   for ln in changed), changed
        seen.append(_split(repo))
    assert seen == [
        [("champion", "demo-model-v0-1-0", 90), ("challenger", "demo-model-v0-2-0", 10)],
        [("champion", "demo-model-v0-1-0", 50), ("challenger", "demo-model-v0-2-0", 50)],
        [("champion", "demo-model-v0-1-0", 0), ("challenger", "demo-model-v0-2-0", 100)],
    ]
    done = run_json(repo, "rollout", "advance", "specs/demo.yaml")
    assert done["state"]["phase"] == "complete" and done["state"]["champion"] == "0.2.0"
    assert _split(repo) == [("champion", "demo-model-v0-2-0", 100)]
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects[:5] == [
        "rollout: demo-model 0.2.0 complete, now the champion (promote it in the registry: sre-llm registry promote)",
        "rollout: demo-model 0.2.0 50 % → 100 % (step-3)",
        "rollout: demo-model 0.2.0 10 % → 50 % (step-2)",
        "rollout: demo-model 0.2.0 50 % → 10 % (step-1)",
        "rollout: start demo-model 0.2.0 against 0.1.0: ab-test at 50 %",
    ]
    assert "Rollout-Decision: manual-advance\n" in git(repo, "log", "-1", "--format=%B")
    assert run_json(repo, "rollout", "advance", "specs/demo.yaml", code=2)["error"]["message"] == \
        "the rollout of demo-model is complete: nothing to advance"
    # The loop's health reads the same history: one deployment, completed; its A/B test passed.
    steps = history.transitions(repo, "demo-model", "rollouts/demo-model/traffic.yaml")
    assert [t.decision for t in steps] == ["start", *["manual-advance"] * 4]
    assert history.rates(steps) == {"deployment": 1.0, "ab_test": 1.0}


def test_state_is_read_from_head_and_survives_restarts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    status = run_json(repo, "rollout", "status", "specs/demo.yaml")  # a new process reads the repo
    assert {k: status["state"][k] for k in ("phase", "champion", "challenger", "stage", "percent", "failed_checks")} == {
        "phase": "progressing", "champion": "0.1.0", "challenger": "0.2.0", "stage": "ab-test", "percent": 50,
        "failed_checks": 0}
    assert [s["name"] for s in status["stages"]] == ["ab-test", "step-1", "step-2", "step-3"]
    path = repo / "rollouts/demo-model/traffic.yaml"
    path.write_text(path.read_text().replace("percent: 50", "percent: 70", 1))
    out = run(repo, "rollout", "advance", "specs/demo.yaml", check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == ("rollouts/demo-model/traffic.yaml has uncommitted changes: "
                                  "commit or revert them (state is read from HEAD)")


def test_bad_moves_are_refused_and_change_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    out = run(repo, "rollout", "advance", "specs/demo.yaml", check=False)
    assert (out.returncode, out.stderr.strip()) == (
        2, "no rollout of demo-model: run `sre-llm rollout start specs/demo.yaml` first")
    out = run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0", "--challenger", "0.3.0", check=False)
    assert out.returncode == 2 and "the challenger must be the version the rendered template serves (0.2.0" in out.stderr
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    head = git(repo, "rev-parse", "HEAD")
    out = run(repo, "rollout", "advance", "specs/demo.yaml", "--percent", "130", check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == ("traffic split refused: champion: percent must be a whole number from 0 to 100 "
                                  "(got -30); challenger: percent must be a whole number from 0 to 100 (got 130)")
    out = run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0", check=False)
    assert out.returncode == 2 and "a rollout of demo-model 0.2.0 is in progress (ab-test, 50 %)" in out.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


def test_abort_sends_everything_to_the_champion(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    run(repo, "rollout", "advance", "specs/demo.yaml", "--percent", "25")
    assert _split(repo)[1][2] == 25
    out = run_json(repo, "rollout", "abort", "specs/demo.yaml", "--reason", "smoke test failed")
    assert out["state"]["phase"] == "aborted"
    assert _split(repo) == [("champion", "demo-model-v0-1-0", 100)]
    body = git(repo, "log", "-1", "--format=%B")
    assert body.startswith("rollout: abort demo-model 0.2.0 at 25 %, all traffic to 0.1.0\n\nReason: smoke test failed\n")
    assert "Rollout-Decision: abort" in body
    # Aborted after the challenger left the A/B stage (by hand, to 25 %): the deployment failed,
    # its A/B test did not.
    steps = history.transitions(repo, "demo-model", "rollouts/demo-model/traffic.yaml")
    assert history.rates(steps) == {"deployment": 0.0, "ab_test": 1.0}


def test_loop_rates_from_rollout_history() -> None:
    """Deployment and A/B success rates: shadow → A/B → steps; a rollback inside the A/B stage
    fails both, one after it fails only the deployment; a rollout in progress counts for neither."""
    T = history.Transition
    done = [T("start", "progressing", "shadow"), T("advance", "progressing", "ab-test"),
            T("advance", "progressing", "step-1"), T("advance", "complete", "-")]
    lost_ab = [T("start", "progressing", "ab-test"), T("hold", "progressing", "ab-test"),
               T("rollback", "rolled-back", "ab-test")]
    lost_later = [T("start", "progressing", "ab-test"), T("advance", "progressing", "step-1"),
                  T("rollback", "rolled-back", "step-1")]
    running = [T("start", "progressing", "ab-test")]
    assert history.rates(done + lost_ab + lost_later + running) == {"deployment": 1 / 3, "ab_test": 2 / 3}
    assert history.rates(running) == {}
    assert history.trailers("subject\n\nbody: not a trailer\n\nRollout-Model: m\nRollout-Phase: complete\n") == \
        {"Rollout-Model": "m", "Rollout-Phase": "complete"}


def test_first_release_takes_all_traffic_and_pins_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, version="0.1.0")
    out = run_json(repo, "rollout", "start", "specs/demo.yaml")
    assert out["state"]["phase"] == "complete" and out["state"]["champion"] == "0.1.0"
    assert _split(repo) == [("champion", "demo-model-v0-1-0", 100)]
    # The next version, rendered and committed, gets no traffic until its rollout starts.
    (repo / "specs/demo.yaml").write_text((repo / "specs/demo.yaml").read_text().replace("version: 0.1.0", "version: 0.2.0"))
    run(repo, "render", "specs/demo.yaml")
    assert _split(repo) == [("champion", "demo-model-v0-1-0", 100)]
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "render 0.2.0")
    out = run_json(repo, "rollout", "start", "specs/demo.yaml")  # champion read back from the completed rollout
    assert out["state"]["champion"] == "0.1.0" and out["state"]["challenger"] == "0.2.0"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_flux_view_base_plus_rollout_component(tmp_path: Path) -> None:
    """What Flux builds: the rendered base with the rollout component applied over it."""
    repo = make_repo(tmp_path)
    run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0")
    flux = yaml.safe_load((repo / "rendered/demo-model/k8s/flux-kustomization.yaml").read_text())["spec"]
    overlay = repo / "flux-view"
    overlay.mkdir()
    base = (repo / flux["path"]).resolve()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(Path("..") / base.relative_to(repo))],
        "components": [str(Path("..") / base.relative_to(repo) / flux["components"][0])]}))
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    svc = next(d for d in yaml.safe_load_all(out.stdout) if d["kind"] == "Service")
    assert [(t["tag"], t["percent"]) for t in svc["spec"]["traffic"]] == [("champion", 50), ("challenger", 50)]
    assert svc["spec"]["template"]["metadata"]["name"] == "demo-model-v0-2-0"
    assert svc["metadata"]["annotations"]["sre-llm.io/rollout-stage"] == "ab-test"


@pytest.mark.skipif(shutil.which("prometheus-pushgateway") is None, reason="prometheus-pushgateway is not installed")
def test_rollout_commands_push_the_loop_rates(tmp_path: Path) -> None:
    """`rollout … --pushgateway URL` pushes the deployment and A/B success rates of the history."""
    import urllib.request

    from tests.test_collect_live import free_port, http_ok, wait_for

    port = free_port()
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: keep it in tmp_path
    gateway = subprocess.Popen(["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}",
                                f"--persistence.file={tmp_path / 'pushgateway.data'}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/-/ready"), 30, "pushgateway ready")
        repo = make_repo(tmp_path)
        run(repo, "rollout", "start", "specs/demo.yaml", "--champion", "0.1.0", "--pushgateway", url)
        run(repo, "rollout", "abort", "specs/demo.yaml", "--pushgateway", url)  # inside the A/B stage
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
    pushed = {line.split("{")[0]: line for line in text.splitlines() if line.startswith("sre_llm_")}
    assert pushed["sre_llm_deployment_success_ratio"].endswith(" 0") and 'model="demo-model"' in pushed["sre_llm_deployment_success_ratio"]
    assert pushed["sre_llm_ab_test_success_ratio"].endswith(" 0") and 'job="sre-llm-rollout"' in pushed["sre_llm_ab_test_success_ratio"]
