"""One CLI grammar: every command teaches with --help, takes --json, and fails in one JSON shape.

Walks the real command tree (every group, every leaf, the deprecated aliases too), so a command
added later is checked without being listed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from sre_llm import cli as cli_mod

ROOT = Path(__file__).resolve().parent.parent


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found += _leaves(command, path)
        else:
            found.append((path, command))
    return found


LEAVES = _leaves(cli_mod.cli)
IDS = [" ".join(p) for p, _ in LEAVES]


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli_mod.main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_the_tree_has_the_final_shape() -> None:
    names = set(IDS)
    for verb in ("register", "sign", "verify", "promote", "rollback", "list", "show", "diff", "keygen"):
        assert f"registry {verb}" in names
    for verb in ("register", "sign", "verify", "promote", "rollback"):  # deprecated aliases: hidden, still there
        assert verb in names and cli_mod.cli.get_command(click.Context(cli_mod.cli), verb).hidden
    assert {"completion", "validate", "render", "schema", "preflight", "train", "export", "eval"} <= names


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=IDS)
def test_every_command_has_help_and_json(path: tuple[str, ...], capsys) -> None:
    code, out, err = _main([*path, "--help"], capsys)
    assert code == 0, err
    assert "--json" in out, f"sre-llm {' '.join(path)} has no --json"
    assert out.startswith(f"Usage: sre-llm {' '.join(path)}")


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=IDS)
def test_every_command_answers_json_in_one_shape(path: tuple[str, ...], capsys, tmp_path: Path, monkeypatch) -> None:
    """With no arguments in an empty folder each command either succeeds or fails for a reason;
    either way stdout is one JSON object whose ``ok`` agrees with the exit code."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _main([*path, "--json"], capsys)
    data = json.loads(out)
    assert isinstance(data, dict) and isinstance(data["ok"], bool), out
    if data["ok"]:
        assert code == 0
    else:
        assert code in (1, 2), (code, out, err)
        assert set(data["error"]) <= {"code", "message", "path"} and data["error"]["code"] and data["error"]["message"]
        assert err.strip(), "the human message goes to stderr as well"


def test_same_condition_same_code(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    # a spec that does not exist: bad input, exit 2, in every command that takes one
    for argv in (["validate", "x.yaml"], ["render", "x.yaml"], ["preflight", "x.yaml"], ["train", "x.yaml", "--dry-run"],
                 ["dataset", "build", "x.yaml"], ["rollout", "status", "x.yaml"], ["registry", "register", "x.yaml", "--model", "."]):
        code, out, _ = _main([*argv, "--json"], capsys)
        assert code == 2, argv
        assert json.loads(out)["error"]["code"] in ("spec_invalid", "bad_input"), (argv, out)
    # an empty registry lists nothing (exit 0), it is not an error
    code, out, _ = _main(["registry", "list", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"ok": True, "model": None, "versions": []}
    # a usage error is a JSON error too
    code, out, _ = _main(["registry", "show", "--json"], capsys)
    assert code == 2 and json.loads(out)["error"]["code"] == "usage"


def test_deprecated_alias_runs_and_says_so(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(["verify", "1.0.0", "--json"], capsys)
    assert code == 2 and json.loads(out)["error"]["message"].endswith("no model registered yet")
    assert err.splitlines()[0] == "sre-llm verify is deprecated: use `sre-llm registry verify` (the old name goes in 0.3.0)"


def test_missing_extra_exits_2_with_the_install_hint(tmp_path: Path) -> None:
    # cryptography missing (the registry extra): sys.modules[name] = None makes `import cryptography`
    # fail as ModuleNotFoundError, exactly as on a machine without it.
    code = ("import sys; sys.modules['cryptography'] = None; from sre_llm.cli import main; "
            "main(['registry', 'keygen', sys.argv[1] + '/k.pem', sys.argv[1] + '/k.pub', '--json'])")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ})
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert not list(tmp_path.iterdir())
    assert error == {"code": "missing_extra",
                     "message": "this command needs the optional package 'cryptography': pip install 'sre-llm[registry]'"}
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str, capsys) -> None:
    code, out, _ = _main(["completion", shell], capsys)
    assert code == 0 and "_SRE_LLM_COMPLETE" in out
    code, out, _ = _main(["completion", shell, "--json"], capsys)
    assert code == 0 and json.loads(out)["script"].strip() in _completion_text(shell)


def _completion_text(shell: str) -> str:
    from click.shell_completion import get_completion_class

    return get_completion_class(shell)(cli_mod.cli, {}, "sre-llm", "_SRE_LLM_COMPLETE").source()


def test_bash_completion_completes_registry_verbs(tmp_path: Path) -> None:
    """What bash asks the program when the user presses TAB after `sre-llm registry p`."""
    env = {**os.environ, "_SRE_LLM_COMPLETE": "bash_complete", "COMP_WORDS": "sre-llm registry p", "COMP_CWORD": "2"}
    proc = subprocess.run([sys.executable, "-c", "from sre_llm.cli import cli; cli(prog_name='sre-llm')"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert "plain,promote" in proc.stdout.split()
