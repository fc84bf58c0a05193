"""`sre-llm plan` on real git repositories: a release committed on main, then a change on a branch.

The commits are made with fixed authors and dates, so their hashes (shown in the comment) and the
whole Markdown are byte-stable and can be held in a golden file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sre_llm import api
from sre_llm.cli import main
from sre_llm.errors import BadInput
from sre_llm.plan import markdown, plan, text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "plan"
SPEC = "specs/tiny-cpu.yaml"
NAME = "sre-remediation-tiny"
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.org", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}  # no user config: no signing, no hooks
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    text_ = path.read_text()
    assert text_.count(old) == 1, old
    path.write_text(text_.replace(old, new))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A GitOps repository with the tiny release rendered and committed on main, HEAD on a branch."""
    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    shutil.copy(ROOT / SPEC, repo / SPEC)
    git(repo, "init", "-q", "-b", "main")
    monkeypatch.chdir(repo)  # spec paths in rendered headers are relative to where render runs
    api.render([SPEC])
    commit_all(repo, "release sre-remediation-tiny 0.1.0")
    git(repo, "checkout", "-q", "-b", "change")
    return repo


def change(repo: Path, old: str, new: str, message: str) -> None:
    edit(repo / SPEC, old, new)
    api.render([SPEC])
    commit_all(repo, message)


def record_run(repo: Path, run_id: str, duration_s: float, gpu_hours: float | None, status: str = "succeeded") -> None:
    folder = repo / "runs" / NAME / "0.1.0" / run_id
    folder.mkdir(parents=True)
    record = {"run_id": run_id, "status": status, "duration_s": duration_s}
    if gpu_hours is not None:
        record["gpu_hours"] = gpu_hours
    (folder / "run.json").write_text(json.dumps(record))


def check_golden(name: str, actual: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.read_text() == actual, f"{path} differs: rerun with --update-golden and read the diff"


def test_deployment_only_change_re_renders_without_retraining(repo: Path, update_golden: bool) -> None:
    change(repo, "scaling: {min_replicas: 0, max_replicas: 1,", "scaling: {min_replicas: 0, max_replicas: 3,",
           "serve up to 3 replicas")
    p = plan(SPEC)
    assert (p.action, p.summary, p.retrain, p.reasons) == ("re-render", "re-render, no retrain", False, [])
    assert p.base_ref == "main" and p.base_how == "merge base with main"
    assert p.base_commit == git(repo, "rev-parse", "main")
    assert p.training_digest["base"] == p.training_digest["head"]
    assert [(f.path, f.status) for f in p.files] == [
        (f"rendered/{NAME}/0.1.0/release.lock.json", "changed"),  # the spec's digest
        (f"rendered/{NAME}/k8s/serving.yaml", "changed"),
    ]
    assert p.gates == [] and p.runner == ["ubuntu-24.04"] and not p.review
    comment = markdown(p)
    assert "**Re-render, no retrain**" in comment and "#### Why retrain" not in comment
    check_golden("deployment-change.md", comment, update_golden)


def test_learning_rate_change_retrains_and_prices_it(repo: Path, update_golden: bool) -> None:
    change(repo, "learning_rate: 2.0e-3", "learning_rate: 1.0e-3", "halve the learning rate")
    record_run(repo, "20260101-000000-aaaa", 300.0, 0.0)
    record_run(repo, "20260102-000000-bbbb", 420.0, 0.0)
    record_run(repo, "20260103-000000-cccc", 9999.0, 0.0, status="failed")  # failures set no price
    p = plan(SPEC)
    assert (p.action, p.summary, p.retrain) == ("retrain", "retrain", True)
    assert p.reasons == ["`spec.training.learning_rate`: 0.002 → 0.001"]
    assert p.training_digest["base"] != p.training_digest["head"]
    assert (f"rendered/{NAME}/0.1.0/train.yaml", "changed") in [(f.path, f.status) for f in p.files]
    e = p.estimate
    assert (e.runs, e.latest_run, e.gpus, e.gpu_hours, e.wall_hours) == (2, "20260102-000000-bbbb", 0, 0.0, 0.1)
    comment = markdown(p)
    assert "**Retrain**" in comment and "A/B 50 % for 1h → 10 % for 30m → 50 % for 30m → 100 % for 30m" in comment
    check_golden("learning-rate-change.md", comment, update_golden)


def test_gate_change_is_shown_old_to_new_and_retrains_nothing(repo: Path) -> None:
    change(repo, "remediation_accuracy: 0.90", "remediation_accuracy: 0.92", "stricter gate")
    p = plan(SPEC)
    assert p.action == "re-render"
    assert [(g.gate, g.bound, g.old, g.new) for g in p.gates] == [("remediation_accuracy", "min", 0.9, 0.92)]
    assert "| remediation_accuracy | min | 0.9 | 0.92 |" in markdown(p)
    assert "gate remediation_accuracy (min): 0.9 → 0.92" in text(p)


def test_template_change_alone_retrains(repo: Path) -> None:
    """A changed LLaMA Factory template changes the config the model trains from: no spec field
    explains it, so the reasons name the rendered keys."""
    templates = repo / "my-templates" / "llamafactory"
    templates.mkdir(parents=True)
    original = (ROOT / "templates" / "llamafactory" / "train.yaml.j2").read_text()
    (templates / "train.yaml.j2").write_text(original + "neftune_noise_alpha: 5\n")
    api.render([SPEC], templates=str(repo / "my-templates"))
    commit_all(repo, "NEFTune")
    p = plan(SPEC, templates=str(repo / "my-templates"))
    assert p.action == "retrain"
    assert p.reasons == ["`train.yaml.neftune_noise_alpha`: (unset) → 5"]
    assert plan(SPEC, base="HEAD", templates=str(repo / "my-templates")).action == "none"


def test_version_bump_and_new_release_retrain(repo: Path) -> None:
    change(repo, "version: 0.1.0", "version: 0.2.0", "0.2.0")
    p = plan(SPEC)
    assert p.retrain and p.reasons == ['`metadata.version`: "0.1.0" → "0.2.0"']
    assert p.counts["removed"] == 0  # rendered/<name>/0.1.0/ stays, as render leaves it
    assert p.counts["created"] == 4 and p.base_version == "0.1.0"  # train, dataset_info, eval, lock

    shutil.copy(repo / SPEC, repo / "specs/other.yaml")
    edit(repo / "specs/other.yaml", f"name: {NAME}", "name: sre-remediation-other")
    p = plan("specs/other.yaml")
    assert p.retrain and p.reasons == ["specs/other.yaml is new (not at main)"]
    assert {f.status for f in p.files} == {"created"} and len(p.gates) == 4


def test_default_base_is_the_merge_base_with_origin_main(repo: Path, tmp_path: Path, monkeypatch) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(clone))
    monkeypatch.chdir(clone)
    git(clone, "checkout", "-q", "-b", "pr")
    change(clone, "learning_rate: 2.0e-3", "learning_rate: 3.0e-3", "faster")
    p = plan(SPEC)
    assert (p.base_ref, p.base_how, p.retrain) == ("origin/main", "merge base with origin/main", True)
    # on main itself, with no origin: what the last commit changed
    git(repo, "checkout", "-q", "main")
    monkeypatch.chdir(repo)
    change(repo, "max_new_tokens: 96", "max_new_tokens: 128", "longer answers")
    p = plan(SPEC)
    assert (p.base_ref, p.base_how, p.action) == ("HEAD~1", "HEAD~1 (no origin/main, and HEAD is on main)", "re-render")


def test_working_tree_changes_count_before_they_are_committed(repo: Path) -> None:
    edit(repo / SPEC, "epochs: 2\n", "epochs: 6\n")
    p = plan(SPEC, base="HEAD")
    assert p.retrain and p.reasons == ["`spec.training.epochs`: 2.0 → 6.0"]
    assert p.base_how == "given with --base"


def test_bad_base_and_no_repository_are_bad_input(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"--base nope: no such commit"):
        plan(SPEC, base="nope")
    with pytest.raises(BadInput, match="not a git repository"):
        plan(SPEC, root=tmp_path)


def test_cost_from_gpu_hours_on_record(repo: Path) -> None:
    """A GPU release: the median GPU-hours of the latest runs times the price (spec or option)."""
    edit(repo / SPEC, "    device: cpu\n", "    device: cuda\n    distributed: {gpus_per_node: 2}\n")
    edit(repo / SPEC, "  signing:\n", "  ci:\n    gpu_hour_cost: 2.5\n    currency: EUR\n    review: true\n  signing:\n")
    for i, hours in enumerate([1.0, 3.0, 2.0]):
        record_run(repo, f"2026010{i + 1}-000000-aaaa", 1800.0, hours)
    record_run(repo, "20251231-000000-old0", 1800.0, None)  # an older record: wall clock × this spec's GPUs
    p = plan(SPEC, base="HEAD")
    e = p.estimate
    assert (e.runs, e.gpus, e.gpu_hours, e.cost, e.currency) == (4, 2, 1.5, 3.75, "EUR")
    assert p.runner == ["self-hosted", "linux", "x64", "gpu"] and p.review
    assert "1.5 GPU-hours — 3.75 EUR at 2.5 EUR/GPU-hour, 30 min wall clock" in markdown(p)
    assert plan(SPEC, base="HEAD", gpu_hour_cost=4.0).estimate.cost == 6.0


def test_cli_json_for_workflows_and_markdown_by_default(repo: Path, capsys) -> None:
    change(repo, "learning_rate: 2.0e-3", "learning_rate: 1.0e-3", "halve the learning rate")
    with pytest.raises(SystemExit) as exc:
        main(["plan", SPEC, "--json"])
    assert exc.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["retrain"] is True and data["summary"] == "retrain"
    assert data["runner"] == ["ubuntu-24.04"] and data["markdown"] == markdown(plan(SPEC))
    with pytest.raises(SystemExit):
        main(["plan", SPEC])
    assert capsys.readouterr().out == markdown(plan(SPEC))
    with pytest.raises(SystemExit):
        main(["plan", SPEC, "--format", "text"])
    assert capsys.readouterr().out.startswith(f"{SPEC}: retrain ({NAME} 0.1.0)\n")


def test_train_records_gpu_hours(tmp_path: Path) -> None:
    """run.json says what the run occupied; plan prices the next run from it."""
    import time

    from sre_llm.execute import train

    record = {"output_dir": str(tmp_path / "output"), "resources": {"gpus": 8}}
    train._finish(record, tmp_path, time.time() - 900, "succeeded", 0)
    assert record["gpu_hours"] == pytest.approx(2.0, abs=0.01)
    assert json.loads((tmp_path / "run.json").read_text())["gpu_hours"] == record["gpu_hours"]


def test_an_sre_llm_upgrade_retrains(repo: Path) -> None:
    """Defaults that are never rendered (how answers are written, how data is labelled) move with
    sre-llm itself: the version recorded in the base's lock is a training input."""
    from sre_llm import __version__

    lock = repo / "rendered" / NAME / "0.1.0" / "release.lock.json"
    data = json.loads(lock.read_text())
    data["generated_by"] = "sre-llm 0.0.9"
    lock.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    commit_all(repo, "as rendered by an older sre-llm")
    p = plan(SPEC, base="HEAD")
    assert p.retrain and p.reasons == [f'`sre-llm`: "sre-llm 0.0.9" → "sre-llm {__version__}"']
