"""Deployment: Kubernetes manifests (vLLM Knative Service, agent-sre LambdaAgent, Flux, alerts),
the progressive rollout (A/B test, then steps to 100 %), its Prometheus analysis, and local serving.

Rendering (:mod:`.manifests`, :mod:`.traffic`) is pure; git goes through :mod:`sre_llm.gitops`,
HTTP to Prometheus lives in :mod:`.prometheus`, processes in :mod:`.serve`.
"""
