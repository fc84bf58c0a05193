"""The one place sre-llm starts LLaMA Factory: a subprocess in its own process group, its output
in a log file, stopped cleanly on Ctrl-C / SIGTERM.

The child gets its own session so a terminal's Ctrl-C reaches only sre-llm, which then stops the
whole group (LLaMA Factory may have started torchrun workers) with SIGTERM, waits, and only then
kills. Nothing is read through pipes: output goes straight to the log file, so a chatty trainer
cannot block on a full pipe and the wrapper costs nothing while training runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

from sre_llm.errors import BadInput

# Keep everything on this machine: no hub, no telemetry, no experiment trackers.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "disabled",
    "WANDB_DISABLED": "true",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}
GRACE_S = 30.0


class Stop(Exception):
    """Raised inside the wait loop when SIGINT or SIGTERM arrives."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def llamafactory_cli() -> str:
    """``llamafactory-cli`` next to this Python first (the venv), then on PATH."""
    here = Path(sys.executable).parent / "llamafactory-cli"
    if here.is_file():
        return str(here)
    found = shutil.which("llamafactory-cli")
    if not found:
        raise BadInput("llamafactory-cli not found: install the training stack (`make setup`, or pip install 'sre-llm[train]')")
    return found


def child_env(extra: Mapping[str, str] = ()) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    # train.log is the run's record (and where a failure's reason is read from): INFO always, even
    # when this process runs with LLaMA Factory quietened (the eval engine sets WARN in-process).
    env["LLAMAFACTORY_VERBOSITY"] = "INFO"
    env.update(extra)
    return env


def run(
    argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str],
    poll: Callable[[], None] | None = None, interval: float = 0.5,
) -> int:
    """Run ``argv`` to completion, calling ``poll`` every ``interval`` seconds; return its exit code.

    Raises :class:`Stop` after stopping the child when this process gets SIGINT or SIGTERM.
    """
    def on_signal(signum: int, frame: object) -> None:
        raise Stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    proc = None
    try:
        with open(log_path, "ab", buffering=0) as log:
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell; the program is sre-llm's own choice
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
            while True:
                try:
                    code = proc.wait(timeout=interval)
                    break
                except subprocess.TimeoutExpired:
                    if poll:
                        poll()
            if poll:
                poll()
            return code
    except Stop:
        if proc is not None:
            # Further signals must not interrupt the clean stop half-way.
            for s in previous:
                signal.signal(s, signal.SIG_IGN)
            stop(proc)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop(proc: subprocess.Popen, grace: float = GRACE_S) -> int:
    """SIGTERM the child's process group, wait up to ``grace`` seconds, then SIGKILL it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait()


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file (without the progress-bar carriage-return noise)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out: deque[str] = deque(maxlen=lines)
    for line in text.split("\n"):  # not splitlines(): a \r-redrawn progress bar is one line
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line:
            out.append(line)
    return list(out)
