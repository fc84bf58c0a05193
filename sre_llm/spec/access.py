"""Spec sections for who may reach what in the cluster (``deployment.network``,
``deployment.mesh``, ``deployment.gateway_token``, ``deployment.collector``) and how long raw
data lives (``dataset.retention``).

Kept out of :mod:`sre_llm.spec.model` so that module stays one screenful per section; the
rendering is :mod:`sre_llm.render.security` and :mod:`sre_llm.render.collector`, deletion is
:mod:`sre_llm.dataset.forget`.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from sre_llm.spec.strict import Strict
from sre_llm.spec.types import DnsName, Duration


class NetworkSpec(Strict):
    """Where the callers the NetworkPolicies admit live. Under Knative a request reaches the
    serving pod from the activator or the ingress, never from the caller's namespace, so the
    serving pods admit Knative's data plane, not the agent's namespace."""

    knative_namespaces: list[DnsName] = Field(
        default_factory=lambda: ["knative-serving", "kourier-system"], min_length=1,
        description="Namespaces of Knative's data plane (activator, and the ingress: kourier-system, istio-system "
        "or contour-external…) that may reach the serving pods.",
    )
    alertmanager_namespace: DnsName = Field(
        "monitoring", description="Namespace of the Alertmanager that posts webhooks to the collector.")
    prometheus_namespace: DnsName = Field(
        "monitoring", description="Namespace of the Prometheus that scrapes the gateway's and the collector's metrics.")


class SecretKeySpec(Strict):
    """A key of a Kubernetes Secret in the namespace sre-llm owns (rendered as a ``secretKeyRef``:
    the value never passes through the spec or the repository)."""

    secret: DnsName = Field(description="Name of the Secret.")
    key: str = Field("token", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$",
                     description="Key in the Secret holding the value.")


class CollectorSpec(Strict):
    """``sre-llm collect serve`` in the cluster: a StatefulSet of one (its store is a volume, and
    Alertmanager must always find it: not scale-to-zero)."""

    image: Optional[str] = Field(None, description="sre-llm image that runs the collector (default: deployment.gateway_image).")
    port: int = Field(9095, ge=1, le=65535, description="Port of the webhook receiver (and its /metrics).")
    storage: str = Field("10Gi", pattern=r"^[1-9][0-9]*(Mi|Gi|Ti)$", description="Size of the store's volume.")
    storage_class: Optional[DnsName] = Field(None, description="StorageClass of the store's volume (cluster default when empty).")
    token: Optional[SecretKeySpec] = Field(
        None, description="Secret holding the bearer token Alertmanager (and the gateway) must present; without it "
        "anyone the NetworkPolicy admits can post.")


class RetentionSpec(Strict):
    """How long raw payloads and built datasets are kept (``sre-llm dataset prune``)."""

    raw: Optional[Duration] = Field(
        None, description="Raw payloads (the alertmanager store) older than this are deleted (empty: kept).")
    datasets: Optional[Duration] = Field(
        None, description="Built dataset folders older than this are deleted, except the one `current` points at "
        "(empty: kept).")
