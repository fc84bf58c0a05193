"""Training progress from LLaMA Factory's ``trainer_log.jsonl``: a rich bar, or JSON events.

LLaMA Factory's ``LogCallback`` appends one JSON object per logging step
(``current_steps``, ``total_steps``, ``loss``, ``lr``, ``epoch``, ``remaining_time``, …) and one
per evaluation (``eval_loss``). Reading that file — rather than parsing the trainer's console
output — is stable across releases and costs nothing while training runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Protocol


def fmt_loss(value: float | None) -> str:
    """A loss for people: 4 significant digits (``1.127``, ``0.03542``), ``–`` when absent.

    Trainer logs carry full floats (``1.1269835233688354``); more digits than this are noise
    from batch order, not information.
    """
    if value is None:
        return "–"
    return f"{value:.4g}"


class LogTail:
    """Reads the new complete lines of a growing JSONL file on each call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # the last piece has no newline yet
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
        return rows


class Reporter(Protocol):
    def start(self, info: dict[str, Any]) -> None: ...
    def rows(self, rows: list[dict[str, Any]]) -> None: ...
    def note(self, message: str) -> None: ...
    def end(self, info: dict[str, Any]) -> None: ...


def step_event(row: dict[str, Any]) -> dict[str, Any]:
    """One trainer_log row as an event: ``step`` when it carries a training loss, ``eval`` for eval."""
    if row.get("eval_loss") is not None and row.get("loss") is None:
        return {"event": "eval", "step": row.get("current_steps"), "total": row.get("total_steps"),
                "eval_loss": row.get("eval_loss")}
    return {"event": "step", "step": row.get("current_steps"), "total": row.get("total_steps"),
            "loss": row.get("loss"), "lr": row.get("lr"), "epoch": row.get("epoch"),
            "elapsed": row.get("elapsed_time"), "eta": row.get("remaining_time")}


class JsonReporter:
    """One JSON object per line on stdout: start, step, eval, note, end."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout

    def _emit(self, event: dict[str, Any]) -> None:
        self.stream.write(json.dumps(event, sort_keys=True) + "\n")
        self.stream.flush()

    def start(self, info: dict[str, Any]) -> None:
        self._emit({"event": "start", **info})

    def rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row.get("loss") is not None or row.get("eval_loss") is not None:  # not the closing summary row
                self._emit(step_event(row))

    def note(self, message: str) -> None:
        self._emit({"event": "note", "message": message})

    def end(self, info: dict[str, Any]) -> None:
        self._emit({"event": "end", **info})


class RichReporter:
    """A progress bar (steps, loss, learning rate, ETA) on stderr, lines for start/eval/end."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.bar = None
        self.task = None

    def start(self, info: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console.print(f"run {info['run_id']} → {info['run_dir']}  (log: {info['log']})")
        self.bar = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
            TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=None, loss="–", lr="–")

    def rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            ev = step_event(row)
            if ev["event"] == "eval":
                self.console.print(f"  step {ev['step']}: eval loss {fmt_loss(ev['eval_loss'])}")
                continue
            fields = {}
            if ev["loss"] is not None:
                fields["loss"] = fmt_loss(ev["loss"])
            if ev["lr"] is not None:
                fields["lr"] = f"{ev['lr']:.2e}"
            self.bar.update(self.task, completed=ev["step"] or 0, total=ev["total"], **fields)

    def note(self, message: str) -> None:
        self.console.print(message)

    def end(self, info: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
