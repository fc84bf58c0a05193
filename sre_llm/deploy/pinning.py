"""A rebuilt cluster gets its champion back (gitops engine): the champion's revision, pinned in git.

Knative creates a revision only from a template it is given, and the serving Service holds one
template: the spec's version, which during a rollout is the challenger. The champion's revision
was made from an older template; on a live cluster it is still there, but a cluster rebuilt from
git (what Flux applies to an empty cluster) would route the champion's share to a revision nobody
recreates. A second Knative object cannot simply recreate it under its own name either: that
revision name belongs to the Service's Configuration, and Knative refuses to let another
Configuration adopt it.

So while the champion is not the version the rendered base serves, the rollout component
(``rollouts/<name>/``) carries ``champion.yaml``: a Knative ``Configuration`` whose template is
the champion's, copied from the last commit whose rendered ``serving.yaml`` served that version,
under the revision name ``<service>-pin-v<version>`` (:func:`sre_llm.deploy.traffic.pinned_revision`),
plus the serving NetworkPolicy for its pods (Knative labels them with their Configuration, not
the Service). The split routes the champion's share to that revision; its gateway reports the
canonical revision name (``SRE_LLM_REVISION``), so the analysis reads the champion's metrics as
before. Knative moves a route to a revision only once it is ready: on a live cluster the champion's
share stays on the old revision until the pinned copy has started (one extra cold start per
rollout, and the champion's pods twice over while it starts).

When git holds no rendered template of the champion (it was rendered elsewhere), nothing is
pinned and the split names the champion's own revision, as before.
"""

from __future__ import annotations

import copy
from typing import Any

from sre_llm import gitops
from sre_llm.deploy import traffic as tr
from sre_llm.deploy.yamldoc import load_all
from sre_llm.spec.load import LoadedSpec

PIN_FILE = "champion.yaml"
REVISION_ENV = "SRE_LLM_REVISION"
RENDERED = "rendered"  # where `sre-llm render` puts the tree (its default root)


def needed(spec: LoadedSpec, champion: str) -> bool:
    """Whether the champion is not what the rendered base's template serves."""
    return champion != spec.release.metadata.version


def _rendered(spec: LoadedSpec, name: str) -> str:
    return f"{RENDERED}/{spec.release.metadata.name}/k8s/{name}"


def champion_objects(root: str, spec: LoadedSpec, champion: str) -> list[dict[str, Any]] | None:
    """The pinned Configuration (and its NetworkPolicy) for ``champion`` from git history, or None."""
    from sre_llm.render.k8s import service_name

    service = service_name(spec.release)
    want = tr.revision_name(service, champion)
    path = _rendered(spec, "serving.yaml")
    for commit in gitops.path_history(root, path):
        docs = load_all((gitops.committed_bytes(root, path, commit) or b"").decode())
        svc = next((d for d in docs if d.get("kind") == "Service"), None)
        template = ((svc or {}).get("spec") or {}).get("template") or {}
        if (template.get("metadata") or {}).get("name") != want:
            continue
        pinned = tr.pinned_revision(service, champion)
        template = copy.deepcopy(template)
        template["metadata"]["name"] = pinned
        for c in template["spec"]["containers"]:
            if c.get("name") == "gateway":
                c["env"] = [*(e for e in c.get("env", []) if e.get("name") != REVISION_ENV),
                            {"name": REVISION_ENV, "value": want}]
        meta = svc["metadata"]
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith("networking.knative.dev/")}
        out: list[dict[str, Any]] = [{
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": pinned, "namespace": meta["namespace"], "labels": labels,
                         "annotations": {"sre-llm.io/pinned-from": commit, "sre-llm.io/champion": champion}},
            "spec": {"template": template},
        }]
        out += _policies(root, spec, commit, service, pinned)
        return out
    return None


def _policies(root: str, spec: LoadedSpec, commit: str, service: str, pinned: str) -> list[dict[str, Any]]:
    docs = load_all((gitops.committed_bytes(root, _rendered(spec, "security.yaml"), commit) or b"").decode())
    out = []
    for d in docs:
        if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == f"{service}-serving":
            p = copy.deepcopy(d)
            p["metadata"]["name"] = pinned
            p["spec"]["podSelector"] = {"matchLabels": {"serving.knative.dev/configuration": pinned}}
            out.append(p)
    return out
