"""The gitops engine's CronJob: valid against the strict Kubernetes v1.33 CronJob schema, and its
command, run from the venv with the rendered environment, clones a real bare repository (over
file:// here, ssh in the cluster), analyzes against a real Prometheus and pushes exactly one commit
that touches only the rollout state (and refuses to push an analysis that committed more); with no
rollout in progress it pushes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from deploy_support import SPEC, git, run
from test_deploy_analysis import _arm, _play, prom  # noqa: F401 - prom is the module's fixture

from sre_llm.deploy import rollout as ro
from sre_llm.deploy.schemacheck import unknown_fields
from sre_llm.render.rollout_job import schedule
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
GITOPS = """      gitops:
        repository: git@github.com:example/gitops.git
        deploy_key: {secret: gitops-deploy-key, key: identity}
        known_hosts: {configmap: gitops-known-hosts}
        pushgateway: http://pushgateway.monitoring:9091
"""


def _repo(tmp_path: Path, prom_url: str) -> Path:
    repo = tmp_path / "work"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Release Person")
    git(repo, "config", "user.email", "release@example.org")
    text = SPEC.format(version="0.2.0").replace("      engine: gitops\n", "      engine: gitops\n" + GITOPS).replace(
        "        window: 1m\n", f"        window: 1m\n        prometheus_url: {prom_url}\n")
    (repo / "specs/demo.yaml").write_text(text)
    (repo / ".gitignore").write_text(".cache/\n")
    run(repo, "render", "specs/demo.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def _cron_job(repo: Path) -> dict:
    return yaml.safe_load((repo / "rendered/demo-model/k8s/rollout-job.yaml").read_text())


def _run_job(job: dict, tmp_path: Path, origin: Path, bin_first: Path | None = None) -> subprocess.CompletedProcess:
    """The container's command with its rendered env; only the paths of the mounts (and the
    repository URL: file:// instead of ssh) point at this machine."""
    (c,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    (tmp_path / "key").write_text("not used over file://\n")
    (tmp_path / "known_hosts").write_text("github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    for name in ("work", "home"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.pop("SRE_LLM_PUSHGATEWAY", None)  # no Pushgateway here (the push is tested in test_deploy_rollout)
    env.update(SRE_LLM_GITOPS_REPO=origin.as_uri(), SRE_LLM_DEPLOY_KEY=str(tmp_path / "key"),
               SRE_LLM_KNOWN_HOSTS=str(tmp_path / "known_hosts"), SRE_LLM_WORKDIR=str(tmp_path / "work"),
               HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT),
               PATH=os.pathsep.join([*([str(bin_first)] if bin_first else []), str(ROOT / ".venv/bin"), os.environ["PATH"]]))
    return subprocess.run(c["command"], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cron_job_validates_and_runs_restricted(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "http://prometheus-operated.monitoring:9090")
    job = _cron_job(repo)
    schema = json.loads((ROOT / "tests/fixtures/schemas/core/cronjob-batch-v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(job)
    assert unknown_fields(job, schema) == []
    assert job["metadata"]["name"] == "demo-model-rollout" and job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["schedule"] == "*/5 * * * *"  # analysis_interval's default, 5m
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo-model-rollout" and pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and c["resources"]["limits"]["memory"] == "512Mi"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SRE_LLM_SPEC"] == "specs/demo.yaml" and env["SRE_LLM_GITOPS_REPO"] == "git@github.com:example/gitops.git"
    assert env["SRE_LLM_PUSHGATEWAY"] == "http://pushgateway.monitoring:9091"  # `rollout analyze` reads it
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["deploy-key"]["secret"]["secretName"] == "gitops-deploy-key"
    assert volumes["known-hosts"]["configMap"]["name"] == "gitops-known-hosts"
    sa = [d for d in yaml.safe_load_all((repo / "rendered/demo-model/k8s/security.yaml").read_text())
          if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "demo-model-rollout"]
    assert sa and sa[0]["automountServiceAccountToken"] is False
    assert "rollout-job.yaml" in yaml.safe_load((repo / "rendered/demo-model/k8s/kustomization.yaml").read_text())["resources"]
    assert [schedule(d) for d in ("30s", "1m", "15m", "1h", "6h", "1d")] == [
        "* * * * *", "* * * * *", "*/15 * * * *", "0 * * * *", "0 */6 * * *", "0 0 * * *"]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_job_analyzes_and_pushes_one_commit_touching_only_the_rollout(prom, tmp_path: Path) -> None:  # noqa: F811
    prom_url, exporter = prom
    repo = _repo(tmp_path, prom_url)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(origin)], check=True)
    job = _cron_job(repo)

    # No rollout yet: the job clones, finds nothing progressing, pushes nothing.
    out = _run_job(job, tmp_path, origin)
    assert out.returncode == 0 and "nothing to analyze" in out.stdout, out.stdout + out.stderr
    head = git(origin, "rev-parse", "main").strip()

    # A rollout started (its A/B stage began 5 minutes ago), pushed; a healthy challenger.
    ro.start(repo, load_spec(repo / "specs/demo.yaml"), champion="0.1.0", now=ro.now_utc() - timedelta(minutes=5))
    git(repo, "push", "-q", str(origin), "main")
    started = git(origin, "rev-parse", "main").strip()
    assert started != head
    _play(prom_url, exporter, _arm(1000, 10, 200, 300, 290), _arm(1000, 12, 210, 300, 288))

    # An analysis that also commits outside the rollout state (a bug, or a tampered image's
    # sre-llm): the job refuses to push it, and origin is untouched.
    rogue = tmp_path / "rogue-bin"
    rogue.mkdir()
    (rogue / "sre-llm").write_text(f'#!/bin/sh\n"{ROOT / ".venv/bin/sre-llm"}" "$@"; s=$?\n'
                                   'echo "# changed" >> specs/demo.yaml && git commit -qam "more than the rollout"\nexit $s\n')
    (rogue / "sre-llm").chmod(0o755)
    out = _run_job(job, tmp_path, origin, bin_first=rogue)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "refusing to push: the analysis changed files outside the rollout state: specs/demo.yaml" in out.stderr
    assert git(origin, "rev-parse", "main").strip() == started

    out = _run_job(job, tmp_path, origin)
    assert out.returncode == 0, out.stdout + out.stderr
    commits = git(origin, "rev-list", f"{started}..main").split()
    assert len(commits) == 1
    files = git(origin, "show", "--name-only", "--format=", commits[0]).split()
    assert files and all(f.startswith("rollouts/demo-model/") for f in files), files
    message = git(origin, "log", "-1", "--format=%an <%ae>%n%B", "main")
    assert message.startswith("sre-llm rollout <rollout@sre-llm.invalid>\nrollout: demo-model 0.2.0 50 % → 10 % (step-1)")
    assert "Rollout-Decision: advance" in message
