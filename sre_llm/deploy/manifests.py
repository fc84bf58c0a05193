"""Moved to :mod:`sre_llm.render.k8s` (rendering is one stage); kept so old imports work."""

from sre_llm.render.k8s import *  # noqa: F401,F403
from sre_llm.render.k8s import (  # noqa: F401
    FLUX_NAMESPACE, ROLLBACK_ALERT, ROLLBACK_METRIC, ROLLOUTS_DIR, base_model_ref, endpoint, model_dir,
    render_manifests, rollout_dir, served_model_name, server_args, service_name,
)
