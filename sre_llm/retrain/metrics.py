"""The loop's own health as Prometheus metrics, pushed to a Pushgateway.

The commands that produce a figure export it (CI jobs and CronJobs end before a scrape, hence the
Pushgateway): ``--pushgateway URL`` or ``$SRE_LLM_PUSHGATEWAY``. Rates are pushed as ratios the
command computed from the records on disk (run.json files, the dataset card, the retrain
history), not as per-process counters a push would reset. Each command pushes under its own
grouping key (``job``, ``model``) so one command never deletes another's series.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from sre_llm.errors import CheckFailed
from sre_llm.retrain import names

ENV = "SRE_LLM_PUSHGATEWAY"


@dataclass
class LoopFigures:
    """What one command knows; None: not measured by it (not pushed)."""

    model: str
    rates: dict[str, float] = field(default_factory=dict)  # metric name (names.RATES) → ratio
    champion_promoted: float | None = None  # unix time
    gates: dict[str, dict[str, tuple[float | None, float]]] = field(default_factory=dict)  # version → gate → (value, threshold)
    outcomes: dict[str, int] = field(default_factory=dict)  # retrain outcome → count in the history
    retrain_last: float | None = None
    p_value: float | None = None


def collector(fig: LoopFigures):
    """A fresh prometheus_client registry holding ``fig`` (nothing global is touched)."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()
    for metric, ratio in sorted(fig.rates.items()):
        Gauge(metric, names.RATES[metric][2], ["model"], registry=reg).labels(fig.model).set(ratio)
    if fig.champion_promoted is not None:
        Gauge(names.CHAMPION_PROMOTED, "When the current champion was promoted (unix seconds).", ["model"],
              registry=reg).labels(fig.model).set(fig.champion_promoted)
    if fig.gates:
        value = Gauge(names.GATE_FIGURE, "Gate figure of a registered version.", ["model", "version", "gate"], registry=reg)
        bound = Gauge(names.GATE_THRESHOLD, "Gate threshold the version was judged against.", ["model", "version", "gate"], registry=reg)
        for version, gates in sorted(fig.gates.items()):
            for gate, (v, t) in sorted(gates.items()):
                if v is not None:
                    value.labels(fig.model, version, gate).set(v)
                bound.labels(fig.model, version, gate).set(t)
    if fig.outcomes:
        g = Gauge(names.RETRAIN_OUTCOMES, "Retrain runs on record by outcome.", ["model", "outcome"], registry=reg)
        for outcome in names.OUTCOMES:
            g.labels(fig.model, outcome).set(fig.outcomes.get(outcome, 0))
    if fig.retrain_last is not None:
        Gauge(names.RETRAIN_LAST, "When the last retrain ran (unix seconds).", ["model"], registry=reg).labels(fig.model).set(fig.retrain_last)
    if fig.p_value is not None:
        Gauge(names.RETRAIN_P_VALUE, "McNemar p-value of the last retrain's challenger against the champion.", ["model"],
              registry=reg).labels(fig.model).set(fig.p_value)
    return reg


def gateway(option: str | None) -> str | None:
    """The Pushgateway URL: the option, else ``$SRE_LLM_PUSHGATEWAY``, else None (no push)."""
    return option or os.environ.get(ENV) or None


def push(url: str, job: str, fig: LoopFigures, timeout: float = 10.0) -> None:
    """Replace this job's series for ``fig.model`` on the Pushgateway; an unreachable gateway is a
    failed check (exit 1), not a crash, and comes after the command's own work is recorded."""
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(url, job=job, registry=collector(fig), grouping_key={"model": fig.model}, timeout=timeout)
    except OSError as exc:
        raise CheckFailed(f"pushgateway {url}: {exc}", code="push_failed") from None


def ratio(good: int, total: int) -> float | None:
    return None if total <= 0 else good / total


def fine_tuning_ratio(records: list[Mapping], last: int = 20) -> float | None:
    """Succeeded runs among the last ``last`` finished ones (running ones are not judged)."""
    done = [r for r in records if r.get("status") in ("succeeded", "failed", "interrupted")][-last:]
    return ratio(sum(r.get("status") == "succeeded" for r in done), len(done))


def collection_ratio(card: Mapping) -> float | None:
    """Records read that were neither quarantined nor broken, from a dataset card's stats."""
    stats = card.get("stats", card)
    read = sum(int(v.get("alerts_read", 0)) for v in (stats.get("sources") or {}).values()) + int(stats.get("actions_read", 0))
    bad = int((stats.get("quarantined") or {}).get("total", 0))
    return ratio(max(read - bad, 0), read) if read else None


def loop_figures(root, name: str, report: Mapping | None = None) -> LoopFigures:
    """What the records under ``root`` say about ``name``'s loop: the fine-tuning rate from the run
    records, the collection rate from the last report's dataset, the champion's promotion time,
    gate figures of every registered version, the outcomes of the retrain history."""
    import json
    from pathlib import Path

    from sre_llm.registry import index as ix
    from sre_llm.retrain.loop import _ts, champion_since, history

    root = Path(root)
    fig = LoopFigures(model=name)
    records = []
    for p in sorted(root.glob(f"runs/{name}/*/*/run.json"), key=lambda p: p.parent.name):
        try:
            records.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    if (r := fine_tuning_ratio(records)) is not None:
        fig.rates["sre_llm_fine_tuning_success_ratio"] = r
    collected = ((report or {}).get("dataset") or {}).get("collection_ratio")
    if collected is not None:
        fig.rates["sre_llm_data_collection_success_ratio"] = float(collected)
    index = ix.load(root, name)
    if index is not None:
        champ = index.get("champion")
        if champ is not None:
            fig.champion_promoted = champion_since(index, champ)
        fig.gates = {v.version: {g: (gate.value, gate.threshold) for g, gate in v.gates.items()} for v in index.versions}
    past = history(root, name)
    for r in past:
        fig.outcomes[r.get("outcome", "failed")] = fig.outcomes.get(r.get("outcome", "failed"), 0) + 1
    if past:
        fig.retrain_last = _ts(past[-1].get("started"))
        fig.p_value = (past[-1].get("mcnemar") or {}).get("p_value")
    return fig
