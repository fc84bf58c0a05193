"""Traffic splits and rollout stages: pure values, checked before anything is rendered.

The split lives on the vLLM serving Service's ``spec.traffic`` (the agent-sre operator resets
traffic on the LambdaAgent's own Service). Each model version is one Knative revision whose name
derives from the version, so the split names versions without a lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sre_llm.errors import BadInput
from sre_llm.spec.model import ModelRelease

CHAMPION, CHALLENGER = "champion", "challenger"
SHADOW = "shadow"  # the stage in which the challenger only answers copies (sre_llm.serve.sidecalls.Shadow)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def revision_name(service: str, version: str) -> str:
    """The Knative revision serving ``version``: ``<service>-v1-2-0`` (DNS-1123 label, ≤ 63)."""
    slug = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    name = f"{service}-v{slug}"
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise BadInput(
            f"revision name {name!r} for version {version} is not a DNS-1123 label of at most 63 characters: "
            f"shorten metadata.name ({len(service)} characters)"
        )
    return name


def shadow_service(service: str) -> str:
    """Engine flagger: the Knative Service answering the champion's shadow copies (its Knative
    router gives the canary revision no tag route to send them to)."""
    return f"{service}-{SHADOW}"


def shadow_revision(service: str, version: str) -> str:
    return revision_name(shadow_service(service), version)


def pinned_revision(service: str, version: str) -> str:
    """Engine gitops: the champion's revision recreated from git (:mod:`sre_llm.deploy.pinning`)."""
    return revision_name(f"{service}-pin", version)


@dataclass(frozen=True)
class Route:
    """One ``spec.traffic`` entry."""

    version: str
    tag: str
    percent: int


@dataclass(frozen=True)
class Split:
    """Where requests go: the champion and (during a rollout) the challenger."""

    routes: tuple[Route, ...]

    def percent_of(self, tag: str) -> int:
        return sum(r.percent for r in self.routes if r.tag == tag)

    def version_of(self, tag: str) -> str | None:
        return next((r.version for r in self.routes if r.tag == tag), None)


def split(champion: str, challenger: str | None = None, challenger_percent: int = 0) -> Split:
    """The split for a champion and an optional challenger taking ``challenger_percent``.

    A route at 0 % is kept (tagged) so its revision stays addressable at ``<tag>-<service>``
    for smoke tests; a challenger at 100 % still lists the champion at 0 for the same reason.
    """
    if challenger is None or challenger == champion:
        if challenger_percent not in (0, 100):
            raise BadInput(f"a challenger share of {challenger_percent} % needs a challenger version other than the champion")
        return check(Split((Route(champion, CHAMPION, 100),)))
    routes = (Route(champion, CHAMPION, 100 - challenger_percent), Route(challenger, CHALLENGER, challenger_percent))
    return check(Split(routes))


def check(s: Split) -> Split:
    """Refuse a split Knative would refuse, or that would drop requests: every percent in 0..100,
    integers, summing to 100, tags and versions unique."""
    problems = []
    for r in s.routes:
        if isinstance(r.percent, bool) or not isinstance(r.percent, int) or not 0 <= r.percent <= 100:
            problems.append(f"{r.tag}: percent must be a whole number from 0 to 100 (got {r.percent!r})")
    total = sum(r.percent for r in s.routes if isinstance(r.percent, int))
    if not problems and total != 100:
        detail = " + ".join(f"{r.tag} {r.percent}" for r in s.routes)
        problems.append(f"percentages must sum to 100 (got {total} = {detail})")
    for field in ("tag", "version"):
        values = [getattr(r, field) for r in s.routes]
        if len(values) != len(set(values)):
            problems.append(f"each route needs its own {field} (got {', '.join(values)})")
    if problems:
        raise BadInput("traffic split refused: " + "; ".join(problems))
    return s


def traffic_block(service: str, s: Split, pinned: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """``spec.traffic`` of the serving Service for ``s`` (pinned revisions, never latestRevision,
    so that applying a new template does not move traffic by itself). Versions in ``pinned`` are
    served by their copy recreated from git (:func:`pinned_revision`)."""
    check(s)
    return [
        {"revisionName": (pinned_revision if r.version in pinned else revision_name)(service, r.version),
         "tag": r.tag, "percent": r.percent, "latestRevision": False}
        for r in s.routes
    ]


@dataclass(frozen=True)
class Stage:
    """One rollout stage: the challenger's share and how long it runs before it may advance."""

    name: str
    percent: int
    duration_s: int


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    """``30m`` → 1800 (the spec's Duration type has already checked the form)."""
    return int(duration[:-1]) * _UNITS[duration[-1]]


def stages(release: ModelRelease) -> list[Stage]:
    """Shadow (when configured: the challenger at 0 %, answering copies only), A/B test (when
    configured), then each step, the last at 100 %."""
    ro = release.spec.deployment.rollout
    out = []
    if ro.shadow is not None:
        out.append(Stage(SHADOW, 0, seconds(ro.shadow.duration)))
    if ro.ab_test is not None:
        out.append(Stage("ab-test", ro.ab_test.percent, seconds(ro.ab_test.duration)))
    out += [Stage(f"step-{i}", p, seconds(ro.step_duration)) for i, p in enumerate(ro.steps, start=1)]
    return out
