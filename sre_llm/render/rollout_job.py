"""The gitops engine in the cluster: a CronJob that runs ``sre-llm rollout analyze`` every
``rollout.analysis_interval`` and is the only writer of ``rollouts/`` (``deployment.rollout.engine:
gitops`` with ``rollout.gitops`` set; workflows only open the PRs that start a rollout).

Each run clones the GitOps branch over ssh with a deploy key (a Secret; ssh checks the host key
against known_hosts from a ConfigMap, strictly), skips when no rollout is progressing, analyzes
(which commits the decision with its evidence), refuses to push a commit that touches anything
but this model's rollout state, its registry index (a rollback marks the challenger) and the audit
log, then pushes. ``concurrencyPolicy: Forbid``: two runs never race on the branch; a push that
loses to another writer fails the run, and the next one starts from the new head.

The container runs as the tokenless ServiceAccount ``<name>-rollout``
(:mod:`sre_llm.render.security`): it talks to git and Prometheus, never to the Kubernetes API.
Every path the script uses is an environment variable, so the same command runs from a venv
against a local repository (``tests/test_rollout_job.py``).
"""

from __future__ import annotations

from sre_llm.audit import DEFAULT_PATH as AUDIT_LOG
from sre_llm.deploy import traffic as tr
from sre_llm.render import pod
from sre_llm.render.security import service_account_name
from sre_llm.spec.load import LoadedSpec
from sre_llm.spec.model import ModelRelease

RUN_AS = 65532
DEPLOY_KEY_DIR, KNOWN_HOSTS_DIR, WORKDIR = "/etc/sre-llm/deploy-key", "/etc/sre-llm/known-hosts", "/work"

SCRIPT = r"""set -eu
umask 077
# ssh refuses a private key others may read, and a Secret volume with fsGroup is group-readable.
cp "$SRE_LLM_DEPLOY_KEY" "$HOME/deploy-key"
chmod 600 "$HOME/deploy-key"
export GIT_SSH_COMMAND="ssh -i $HOME/deploy-key -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$SRE_LLM_KNOWN_HOSTS"
repo="$SRE_LLM_WORKDIR/repo"
rm -rf "$repo"
git clone --quiet --single-branch --branch "$SRE_LLM_GITOPS_BRANCH" "$SRE_LLM_GITOPS_REPO" "$repo"
cd "$repo"
if ! grep -qs "^    sre-llm.io/rollout-phase: progressing$" "$SRE_LLM_ROLLOUT_DIR/traffic.yaml"; then
  echo "no rollout of $SRE_LLM_MODEL in progress: nothing to analyze"
  exit 0
fi
git config user.name "$SRE_LLM_GIT_NAME"
git config user.email "$SRE_LLM_GIT_EMAIL"
before=$(git rev-parse HEAD)
status=0
sre-llm rollout analyze "$SRE_LLM_SPEC" --prometheus "$SRE_LLM_PROMETHEUS_URL" || status=$?
if [ "$(git rev-parse HEAD)" = "$before" ]; then
  exit "$status"
fi
outside=$(git diff --name-only "$before" HEAD | grep -v -e "^$SRE_LLM_ROLLOUT_DIR/" -e "^registry/$SRE_LLM_MODEL.yaml$" -e "^$SRE_LLM_JOB_AUDIT_PATH$" || true)
if [ -n "$outside" ]; then
  echo "refusing to push: the analysis changed files outside the rollout state: $outside" >&2
  exit 3
fi
git push --quiet origin "HEAD:refs/heads/$SRE_LLM_GITOPS_BRANCH"
echo "pushed $(git rev-parse HEAD)"
# 1 is a rollback, committed and pushed above: the run did its job (the rollback has its own alert)
[ "$status" -le 1 ] || exit "$status"
"""


def enabled(release: ModelRelease) -> bool:
    ro = release.spec.deployment.rollout
    return ro.engine == "gitops" and ro.gitops is not None


def schedule(interval: str) -> str:
    """A cron schedule for a Duration: ``5m`` → ``*/5 * * * *``. Cron's unit is the minute (a
    shorter interval runs every minute); a step that does not divide the hour or day restarts
    at each hour or day (``*/7`` runs at :00, :07 … :56, then :00)."""
    s = max(60, tr.seconds(interval))
    minutes = s // 60
    if minutes < 60:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours = minutes // 60
    if hours < 24:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    days = hours // 24
    return "0 0 * * *" if days == 1 else f"0 0 */{days} * *"


def env(spec: LoadedSpec, spec_path: str) -> list[dict]:
    from sre_llm.render.k8s import rollout_dir  # k8s imports this module

    release = spec.release
    ro = release.spec.deployment.rollout
    g = ro.gitops
    assert g is not None  # noqa: S101 - callers check enabled()
    name, _, email = g.author.partition(" <")
    values = {
        "SRE_LLM_MODEL": release.metadata.name,
        "SRE_LLM_SPEC": g.spec_path or spec_path,
        "SRE_LLM_ROLLOUT_DIR": rollout_dir(release),
        "SRE_LLM_JOB_AUDIT_PATH": AUDIT_LOG,
        "SRE_LLM_GITOPS_REPO": g.repository,
        "SRE_LLM_GITOPS_BRANCH": g.branch,
        "SRE_LLM_PROMETHEUS_URL": ro.analysis.prometheus_url,
        "SRE_LLM_DEPLOY_KEY": f"{DEPLOY_KEY_DIR}/{g.deploy_key.key}",
        "SRE_LLM_KNOWN_HOSTS": f"{KNOWN_HOSTS_DIR}/{g.known_hosts.key}",
        "SRE_LLM_WORKDIR": WORKDIR,
        "SRE_LLM_GIT_NAME": name,
        "SRE_LLM_GIT_EMAIL": email.rstrip(">"),
        "HOME": "/tmp",
        **({"SRE_LLM_PUSHGATEWAY": g.pushgateway} if g.pushgateway else {}),
    }
    return [{"name": k, "value": v} for k, v in values.items()]


def cron_job(spec: LoadedSpec, spec_path: str, labels: dict[str, str]) -> dict:
    """The CronJob (restricted pod security, bounded resources and run time)."""
    release = spec.release
    d = release.spec.deployment
    g = d.rollout.gitops
    assert g is not None  # noqa: S101 - callers check enabled()
    interval = max(60, tr.seconds(d.rollout.analysis_interval))
    container = {
        "name": "rollout",
        "image": g.image or d.gateway_image,
        "command": ["/bin/sh", "-c", SCRIPT, "rollout"],
        "env": env(spec, spec_path),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": pod.security_context(RUN_AS),
        "volumeMounts": [{"name": "deploy-key", "mountPath": DEPLOY_KEY_DIR, "readOnly": True},
                         {"name": "known-hosts", "mountPath": KNOWN_HOSTS_DIR, "readOnly": True},
                         {"name": "work", "mountPath": WORKDIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": f"{release.metadata.name}-rollout", "namespace": d.namespace, "labels": labels},
        "spec": {
            "schedule": schedule(d.rollout.analysis_interval),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": interval,  # a missed run is skipped, not made up in a burst
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,  # the next scheduled run is the retry, from a fresh clone
                "activeDeadlineSeconds": min(interval, 900),
                "ttlSecondsAfterFinished": 86400,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": service_account_name(release, "rollout"),
                        "automountServiceAccountToken": False,
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                            "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [container],
                        "volumes": [
                            {"name": "deploy-key", "secret": {"secretName": g.deploy_key.secret, "defaultMode": 0o400,
                                                              "items": [{"key": g.deploy_key.key, "path": g.deploy_key.key}]}},
                            {"name": "known-hosts", "configMap": {"name": g.known_hosts.configmap,
                                                                  "items": [{"key": g.known_hosts.key, "path": g.known_hosts.key}]}},
                            {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        ],
                    },
                },
            }},
        },
    }
