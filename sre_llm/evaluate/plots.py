"""The report's figures as PNG bytes (matplotlib, Agg backend; imported only when reporting).

Each function takes plain data from ``eval.json`` and returns PNG bytes, or None when there is
nothing to draw (no trainer log, no latency samples).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

_SHORT = {
    "check-pvc-status": "check-pvc",
    "flux-reconcile-gitrepository": "flux-gitrepo",
    "flux-reconcile-helmrelease": "flux-helm",
    "flux-reconcile-kustomization": "flux-kustomize",
    "pod-check-status": "pod-check",
    "pod-restart": "pod-restart",
    "scale-deployment": "scale-deploy",
    "none": "none",
    "(unknown)": "unknown fn",
    "(unparseable)": "unparseable",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "sre-llm", "figure.dpi": 110})
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # No timestamp in the metadata: the same data gives the same bytes.
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def confusion_png(matrix: Mapping[str, Mapping[str, int]]) -> bytes:
    """Truth (rows) × prediction (columns) counts, row-normalised colour, counts written in."""
    plt = _plt()
    rows = list(matrix)
    cols = list(next(iter(matrix.values())))
    counts = [[matrix[r][c] for c in cols] for r in rows]
    shares = [[v / max(1, sum(row)) for v in row] for row in counts]
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, r in enumerate(rows):  # outline the diagonal: the right answers
        if r in cols:
            j = cols.index(r)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#2ca02c", linewidth=1.2))
    for i, row in enumerate(counts):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", color="white" if shares[i][j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [_SHORT.get(c, c) for c in cols], rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), [f"{_SHORT.get(r, r)} ({sum(counts[i])})" for i, r in enumerate(rows)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth (examples)")
    ax.set_title("Remediation chosen, per true LambdaFunction")
    return _png(fig)


def latency_png(latencies_ms: Sequence[float], p50: float | None, p95: float | None, gate_ms: float | None,
                batch_ms_per_example: Sequence[float] = ()) -> bytes | None:
    """Histogram of single-request latencies with P50/P95 and the gate marked."""
    if not latencies_ms:
        return None
    plt = _plt()
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.4))
    # One set of bins for both series, so their bars line up and compare.
    bins = np.histogram_bin_edges([*latencies_ms, *batch_ms_per_example], bins=30)
    ax.hist(latencies_ms, bins=bins, color="#4c78a8", alpha=0.85, label=f"one request at a time (n={len(latencies_ms)})")
    if batch_ms_per_example:
        ax.hist(batch_ms_per_example, bins=bins, color="#f58518", alpha=0.6,
                label=f"batched, per example, amortised (n={len(batch_ms_per_example)})")
    for x, style, name in ((p50, ":", "P50"), (p95, "--", "P95")):
        if x is not None:
            ax.axvline(x, color="black", linestyle=style, linewidth=1)
            ax.annotate(f"{name} {x:.0f} ms", (x, ax.get_ylim()[1] * 0.92), rotation=90, ha="right", va="top", fontsize=8)
    title = "Inference latency"
    if gate_ms is not None and gate_ms <= 1.5 * max(bins):
        ax.axvline(gate_ms, color="#d62728", linewidth=1.5, label=f"gate P95 ≤ {gate_ms:.0f} ms")
    elif gate_ms is not None:  # far to the right: drawing it would squash the histogram
        title += f" (gate P95 ≤ {gate_ms:.0f} ms, off scale)"
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("examples")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def loss_png(curves: Mapping[str, Sequence[Sequence[float]]]) -> bytes | None:
    """Training and evaluation loss against the step, from the run's ``trainer_log.jsonl``."""
    train, evals = curves.get("train") or [], curves.get("eval") or []
    if not train and not evals:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if train:
        ax.plot([s for s, _ in train], [v for _, v in train], color="#4c78a8", label="train loss")
    if evals:
        ax.plot([s for s, _ in evals], [v for _, v in evals], "o-", color="#f58518", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    ax.set_title("Training")
    ax.legend(frameon=False)
    return _png(fig)


def baseline_png(scores: Mapping[str, Any], base: Mapping[str, Any], keys: Sequence[str]) -> bytes:
    """Model vs base model, side by side, for each figure in ``keys``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = range(len(keys))
    model_v = [scores.get(k) or 0 for k in keys]
    base_v = [base.get(k) or 0 for k in keys]
    ax.bar([x - 0.2 for x in xs], base_v, 0.4, color="#bab0ac", label="base model (no training)")
    ax.bar([x + 0.2 for x in xs], model_v, 0.4, color="#4c78a8", label="this model")
    for x, (b, m) in enumerate(zip(base_v, model_v)):
        ax.text(x - 0.2, b + 0.01, f"{b:.0%}", ha="center", va="bottom", fontsize=8)
        ax.text(x + 0.2, m + 0.01, f"{m:.0%}", ha="center", va="bottom", fontsize=8)
    names = {"false_positive_rate": "false-positive rate\n(lower is better)"}
    ax.set_xticks(list(xs), [names.get(k, k.replace("_accuracy", "\naccuracy").replace("_", " ")) for k in keys])
    ax.set_ylim(0, 1.12)
    ax.set_title("Training, not the harness, earns the score")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return _png(fig)
