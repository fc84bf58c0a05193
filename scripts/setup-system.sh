#!/usr/bin/env bash
# Debian packages the tests run for real: Prometheus, Alertmanager, age, docker-registry (the CNCF
# distribution registry, for the OCI store), kubectl (kustomize builds of the rendered trees). `make test` runs this;
# `make demo` does not (the demo needs none of them). Installed only when missing.
#
# Needs apt-get and root (or sudo). Where either is missing it says what to install and exits 0:
# the tests that need a missing program are skipped with that reason. Another apt run holding
# the dpkg lock (unattended-upgrades on a fresh machine) is waited for, at most
# SRE_LLM_APT_LOCK_WAIT seconds (default 300), with a message while waiting.
set -euo pipefail
WAIT=${SRE_LLM_APT_LOCK_WAIT:-300}
LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v age >/dev/null 2>&1 || need+=(age)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v kubectl >/dev/null 2>&1 || need+=(kubectl)  # its built-in kustomize builds the rendered trees
command -v prometheus-pushgateway >/dev/null 2>&1 || command -v pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
if [ ${#need[@]} -eq 0 ]; then
  echo "setup-system: prometheus, alertmanager, pushgateway, age, docker-registry and kubectl are installed"
  exit 0
fi

skip() {
  echo "setup-system: $1; install ${need[*]} yourself — until then the tests that run them are skipped" >&2
  exit 0
}
command -v apt-get >/dev/null 2>&1 || skip "no apt-get here (not Debian/Ubuntu)"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || skip "not root and no sudo"
  SUDO=(sudo)
fi

# Wait while another process holds a dpkg/apt lock. fuser (psmisc) names the holder; without it,
# apt's own DPkg::Lock::Timeout below still waits (apt >= 1.9.11; older apt ignores the option).
wait_for_locks() {
  command -v fuser >/dev/null 2>&1 || return 0
  local waited=0
  while ${SUDO[@]+"${SUDO[@]}"} fuser "${LOCKS[@]}" >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT" ]; then
      echo "setup-system: another package manager still holds the dpkg lock after ${WAIT}s; let it finish (or raise SRE_LLM_APT_LOCK_WAIT) and run make again" >&2
      exit 1
    fi
    [ "$waited" -eq 0 ] && echo "setup-system: another package manager holds the dpkg lock (often unattended-upgrades on a fresh machine); waiting up to ${WAIT}s"
    sleep 5
    waited=$((waited + 5))
  done
}

APT=(${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$WAIT")
echo "setup-system: apt-get install ${need[*]}"
wait_for_locks
"${APT[@]}" update -qq
wait_for_locks
"${APT[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup-system: installed ${need[*]}"
