"""The rollouts on record, from git: the loop's deployment and A/B success rates.

Every rollout transition is one commit with trailers (:func:`sre_llm.deploy.rollout._message`):
``Rollout-Model``, ``Rollout-Decision``, ``Rollout-Phase``, ``Rollout-Stage``. Read oldest first,
they give each rollout's fate:

- **deployment success rate**: finished rollouts that reached ``complete`` (the challenger at
  100 %), among those that finished (``complete``, ``rolled-back`` or ``aborted``);
- **A/B success rate**: A/B tests whose challenger advanced past the ``ab-test`` stage, among the
  A/B tests that ended (advanced, or rolled back / aborted while in it). A loop that keeps
  producing challengers that lose in production is unhealthy even when every gate passed.

The last :data:`LAST` of each are judged, so an old failure ages out. Pure but for reading git.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sre_llm import gitops

LAST = 20
AB_STAGE = "ab-test"
FINISHED = ("complete", "rolled-back", "aborted")


@dataclass(frozen=True)
class Transition:
    decision: str
    phase: str
    stage: str


def trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines of a commit message's last paragraph."""
    last = message.strip().split("\n\n")[-1]
    out = {}
    for line in last.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            out[key] = value.strip()
    return out


def transitions(root: str | Path, model: str, traffic_path: str) -> list[Transition]:
    """The model's rollout commits that touched ``traffic_path``, oldest first."""
    found = []
    for sha in reversed(gitops.path_history(root, traffic_path)):
        t = trailers(gitops.commit_message(sha, root))
        if t.get("Rollout-Model") == model:
            found.append(Transition(t.get("Rollout-Decision", ""), t.get("Rollout-Phase", ""), t.get("Rollout-Stage", "-")))
    return found


def rates(steps: list[Transition], last: int = LAST) -> dict[str, float]:
    """``deployment`` and ``ab_test`` success ratios (absent when nothing of the kind ended)."""
    deployments: list[bool] = []
    ab_tests: list[bool] = []
    stage = None
    for step in steps:
        if step.decision == "start":
            stage = step.stage
        elif step.phase in FINISHED:
            deployments.append(step.phase == "complete")
            if stage == AB_STAGE:
                ab_tests.append(step.phase == "complete")
            stage = None
        elif stage == AB_STAGE and step.stage != AB_STAGE:
            ab_tests.append(True)
            stage = step.stage
        else:
            stage = step.stage
    out = {}
    for name, seen in (("deployment", deployments[-last:]), ("ab_test", ab_tests[-last:])):
        if seen:
            out[name] = sum(seen) / len(seen)
    return out
