"""Helpers for the deployment tests: a real GitOps repo in tmp_path with a spec whose rollout
runs in seconds and whose analysis queries read the test exporter's metrics."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from registry_support import SRE, git  # the same repo plumbing as the registry tests

SPEC = """\
apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: demo-model
  version: {version}
spec:
  base_model:
    path: .cache/models/tiny
    family: qwen2
  training:
    method: full
    device: cpu
    precision: fp32
  deployment:
    namespace: ai
    gpus: 0
    scaling: {{min_replicas: 0, max_replicas: 1, target_concurrency: 4}}
    rollout:
      engine: gitops
      shadow: null
      ab_test: {{percent: 50, duration: 10s}}
      steps: [10, 50, 100]
      step_duration: 10s
      rollback:
        min_success_rate: 0.9
        max_error_rate: 0.05
        max_p95_latency_ms: 500
        failure_threshold: 2
        min_samples: 100
      analysis:
        window: 1m
        queries:
          requests: 'sum(demo_requests_total{{revision="$revision"}})'
          errors: 'sum(demo_requests_total{{revision="$revision",code="500"}})'
          p95_latency_ms: 'max(demo_latency_p95_ms{{revision="$revision"}})'
          remediations: 'sum(demo_remediations_total{{revision="$revision"}})'
          remediation_successes: 'sum(demo_remediations_total{{revision="$revision",outcome="success"}})'
"""


def make_repo(tmp_path: Path, version: str = "0.2.0") -> Path:
    """A GitOps repo holding the spec and its rendered tree, committed."""
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Rollout Bot")
    git(repo, "config", "user.email", "rollout@example.org")
    (repo / "specs" / "demo.yaml").write_text(SPEC.format(version=version))
    (repo / ".gitignore").write_text(".cache/\n")
    run(repo, "render", "specs/demo.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([*SRE, *args], cwd=repo, capture_output=True, text=True, env=env, timeout=120, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"sre-llm {' '.join(args)} exited {out.returncode}: {out.stdout}{out.stderr}")
    return out


def run_json(repo: Path, *args: str, code: int = 0) -> dict:
    out = run(repo, *args, "--json", check=False)
    assert out.returncode == code, out.stdout + out.stderr
    return json.loads(out.stdout)


def changed_files(repo: Path, rev: str = "HEAD") -> list[str]:
    return sorted(git(repo, "show", "--name-only", "--format=", rev).split())
