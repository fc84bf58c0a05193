"""Self-made text for the tiny base model: a tokenizer corpus and generic copy tasks.

Nothing here is downloaded. The vocabulary is operations-flavoured (alerts, Kubernetes objects,
log lines) so the byte-level BPE learns merges that real remediation data will use, but the tasks
are generic — "repeat this", "return these fields as JSON" — and carry no knowledge of the
agent-sre catalog: that is what fine-tuning teaches.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from typing import Iterator

WORDS = (
    "alert firing resolved pending critical warning info severity namespace pod container node "
    "deployment statefulset daemonset replicaset service ingress volume claim persistent job cronjob "
    "cluster instance job kustomization helmrelease gitrepository source reconcile restart scale check "
    "status ready unavailable crash loop backoff memory cpu disk latency error rate request timeout "
    "kube prometheus alertmanager flux grafana loki web api worker cache queue db redis postgres nginx "
    "frontend backend payments checkout auth search billing monitoring ingress-nginx cert-manager "
    "storage logging shop default kube-system production staging dev the a of to and is was has for "
    "on in with high low over under above below threshold minutes seconds hours replicas restarts "
    "failed succeeded running terminated oom killed evicted throttled degraded healthy unhealthy "
    "value label annotation summary description runbook action function parameters name type none"
).split()

LABEL_KEYS = (
    "alertname", "namespace", "pod", "container", "deployment", "statefulset", "node", "instance",
    "job", "service", "cluster", "severity", "persistentvolumeclaim", "kustomization", "helmrelease",
    "gitrepository", "name", "kind", "replicas", "reason", "phase", "team", "region", "zone",
)

SENTENCES = (
    "{a} {b} is {c} in namespace {ns}.",
    "The {a} {b} has been {c} for more than {n} minutes.",
    "{a}/{b} restarted {n} times in the last hour.",
    "Reconcile {a} {b} in {ns} failed: {c}.",
    "Scale {a} {b} to {n} replicas.",
    "Check the status of {a} {b} on node {node}.",
    "level={c} msg=\"{a} {b} {c}\" namespace={ns} pod={pod}",
    "{pod} {c} with exit code {n}",
)


def _rng_word(r: random.Random) -> str:
    return r.choice(WORDS)


def random_value(r: random.Random) -> str:
    """A value shaped like the ones alerts carry: names with hashes, digits, IPs, versions."""
    shape = r.randrange(7)
    if shape == 0:
        return f"{_rng_word(r)}-{_hex(r, 9)}-{_alnum(r, 5)}"
    if shape == 1:
        return f"{_rng_word(r)}-{_rng_word(r)}-{r.randrange(100)}"
    if shape == 2:
        return f"{r.randrange(1, 255)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}:{r.choice((9100, 8080, 443))}"
    if shape == 3:
        return _alnum(r, r.randrange(3, 12))
    if shape == 4:
        return f"{_rng_word(r)}-{r.randrange(10_000)}"
    if shape == 5:
        return _rng_word(r)
    return f"{_rng_word(r)}{r.choice(('-', '.', '_'))}{_rng_word(r)}"


def _hex(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def _alnum(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def sentence(r: random.Random) -> str:
    return r.choice(SENTENCES).format(
        a=_rng_word(r), b=random_value(r), c=_rng_word(r), ns=random_value(r), n=r.randrange(1, 500),
        node=random_value(r), pod=random_value(r),
    )


@dataclass(frozen=True)
class Example:
    """One chat turn: what the user says and what the assistant answers."""

    prompt: str
    response: str


def copy_example(r: random.Random) -> Example:
    """A generic copy task; the answer is always made of pieces of the prompt."""
    kind = r.randrange(4)
    if kind == 0:  # repeat a sequence verbatim
        seq = " ".join(random_value(r) for _ in range(r.randrange(2, 7)))
        return Example(f"Repeat exactly:\n{seq}", seq)
    labels = {}
    for key in r.sample(LABEL_KEYS, r.randrange(3, 8)):
        labels[key] = random_value(r)
    keys = list(labels)
    if kind == 1:  # return some fields as JSON, keys as given
        picked = sorted(r.sample(keys, r.randrange(1, min(4, len(keys)) + 1)))
        answer = json.dumps({k: labels[k] for k in picked}, sort_keys=True)
        return Example(f"Return {', '.join(picked)} as JSON.\n{_show(labels, r)}", answer)
    if kind == 2:  # one field's value
        key = r.choice(keys)
        return Example(f"What is the {key}?\n{_show(labels, r)}", labels[key])
    # rename fields: the model must find a value by one name and write it under another
    src = r.sample(keys, min(len(keys), r.randrange(1, 4)))
    dst = [r.choice(("name", "target", "resource", "object", "ref")) + str(i) for i in range(len(src))]
    mapping = ", ".join(f"{d}={s}" for d, s in zip(dst, src))
    answer = json.dumps({d: labels[s] for d, s in zip(dst, src)}, sort_keys=True)
    return Example(f"Map {mapping} and answer in JSON.\n{_show(labels, r)}", answer)


def _show(labels: dict[str, str], r: random.Random) -> str:
    style = r.randrange(3)
    if style == 0:
        return "\n".join(f"{k}: {v}" for k, v in labels.items())
    if style == 1:
        return " ".join(f"{k}={v}" for k, v in labels.items())
    return "Labels: " + json.dumps(labels)


def tokenizer_corpus(seed: int = 0, lines: int = 6000) -> Iterator[str]:
    """Lines the tokenizer is trained on: sentences, copy-task prompts and answers."""
    r = random.Random(seed)  # noqa: S311 - seeded generator for reproducible data, never a secret
    for _ in range(lines):
        if r.random() < 0.5:
            yield sentence(r)
        else:
            ex = copy_example(r)
            yield ex.prompt
            yield ex.response
