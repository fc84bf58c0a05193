"""The pipeline between the sources and the files: label → redact → validate → dedupe → limit → split.

Pure: raw records in, a :class:`Result` out (examples per split, quarantined and failed records,
the unlabelled alerts, counts for the card). Reading sources and writing files are
:mod:`sre_llm.dataset.build`'s job.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sre_llm.answer.format import INSTRUCTION, ParseError, parse_output, render_output, render_parts
from sre_llm.catalog import NONE
from sre_llm.dataset import records as rec
from sre_llm.dataset.label import (ACTION, ANNOTATION, LABELS, SELF_RESOLVED, ActionIndex, LabelIndex,
                                   alerts_from_actions, from_annotations, self_resolved)
from sre_llm.dataset.quality import normalize, problems, visible_labels
from sre_llm.dataset.redact import Redactor
from sre_llm.dataset.split import SPLITS, assign_digest, group_digest
from sre_llm.errors import BadInput

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Settings:
    """What the spec's ``dataset`` section decides for the pipeline."""

    name: str = "sre-remediation"
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    min_examples: int = 1000
    max_examples: int = 100_000
    include_failed: bool = False
    self_resolve_s: float | None = 900  # labelling.self_resolve_window; None: never evidence

    @classmethod
    def from_spec(cls, ds: Any) -> "Settings":
        """From a :class:`sre_llm.spec.model.DatasetSpec`."""
        from sre_llm.spec.types import duration_seconds

        s = ds.split
        window = ds.labelling.self_resolve_window
        return cls(ds.name, s.train, s.validation, s.test, ds.min_examples, ds.max_examples, ds.include_failed,
                   duration_seconds(window) if window else None)


# One example, as a tuple for speed: 100k dataclass instances cost a measurable share of the budget.
# (time, digest, source, function, outcome, label_source, group digest, input, output,
#  hash of the normalized input, hash of the normalized output, evidence kind)
Example = tuple


@dataclass
class Result:
    splits: dict[str, list[Example]]
    quarantined: list[dict]
    failed: list[Example]
    stats: dict[str, Any] = field(default_factory=dict)
    #: Alerts without evidence, one per firing, oldest first: the rows of ``dataset unlabelled``
    #: (columns of :data:`sre_llm.dataset.labelfile.COLUMNS`, the answer ones left out).
    unlabelled: list[dict] = field(default_factory=list)

    def rows(self, split: str) -> Iterable[dict[str, str]]:
        """The alpaca records of a split, in file order."""
        for ex in self.splits[split]:
            yield {"instruction": INSTRUCTION, "input": ex[7], "output": ex[8]}


def _noop(stage: str, n: int) -> None:
    return None


def _prepare_action(a: dict) -> None:
    # An action that embeds its alert joins by that alert's labels and fingerprint.
    embedded = a.get("alert")
    if isinstance(embedded, dict) and isinstance(embedded.get("labels"), dict):
        a.setdefault("labels", embedded["labels"])
        if not a.get("fingerprint"):  # only a full label set has the alert's fingerprint
            a["fingerprint"] = embedded.get("fingerprint") or rec.fingerprint(embedded["labels"])


class _Reader:
    """Pass 1: every record is checked and every alert reduced at once to what the rest needs
    (rendered, redacted input; join keys; the annotation label), so 100k raw alerts are never
    held in memory together."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self.pending: list[tuple] = []
        self.actions: list[dict] = []
        self.activity: list[dict] = []  # human resolutions that name no function: someone acted
        self.labels: list[dict] = []
        self.ends: dict[tuple[str, str], str] = {}  # (fingerprint, startsAt) → endsAt of resolved notifications
        self.quarantine: list[dict] = []
        self.read: Counter = Counter()
        # (lambda_function, lambda_parameters) as written → (fn, params, problem, checked): the
        # alerts of one rule repeat the same answer, so it is parsed, checked and rendered once.
        # ``checked`` is (catalog problem, rendered answer), or None when there is a problem.
        self.answers: dict[tuple, tuple] = {}

    def _quarantine(self, source: str, where: str, reason: str, record: Any) -> None:
        self.quarantine.append(self.redactor.mapping(dict(rec.Quarantined.of(source, where, reason, record))))

    def feed(self, r: Any) -> None:
        if isinstance(r, rec.Quarantined):
            self.quarantine.append(self.redactor.mapping(dict(r)))
            return
        why = rec.check(r)
        if why is not None:
            self._quarantine(r.get("source", "?") if isinstance(r, dict) else "?", "", why, r)
            return
        kind = r.get("kind", "alert")
        if kind == "alert":
            self.alert(r)
        elif kind == "label":
            self.labels.append(r)
        elif kind == "resolution" and not r.get("lambda_function"):
            _prepare_action(r)
            self.activity.append(r)
        elif kind == "action" or kind == "resolution":
            _prepare_action(r)
            self.actions.append(r)
            for alert in alerts_from_actions((r,)):
                why = rec.check(alert)
                if why is None:
                    self.alert(alert)
                else:
                    self._quarantine(alert["source"], "", f"embedded alert: {why}", r)

    def alert(self, r: dict) -> None:
        source = r.get("source", "?")
        self.read[source] += 1
        labels = r["labels"]
        ann = r.get("annotations") or {}
        shown = {k: ann[k] for k in ("summary", "description") if k in ann}
        key = (ann.get("lambda_function"), ann.get("lambda_parameters"))
        answer = self.answers.get(key)
        if answer is None:
            fn, params, problem = from_annotations(ann)
            checked = None
            if problem is None and fn:  # no annotation: pass 2 looks for other evidence
                why = problems(fn, params)
                checked = ("; ".join(why), None) if why else (None, render_output(fn, params))
            answer = (fn, params, problem, checked)
            if len(self.answers) >= _ANSWER_CACHE:
                self.answers.clear()
            self.answers[key] = answer
        fn, params, problem, checked = answer
        start, end, fp = rec.utc(r["startsAt"]), rec.utc(r.get("endsAt")), r.get("fingerprint") or ""
        if end and r.get("status") == "resolved":
            self.ends[(fp, start)] = end  # the firing notifications of this alert had no end
        # The input is redacted in pass 2 together with the answer (one pass over both).
        self.pending.append((
            start, source, r.get("incident"), render_parts(visible_labels(labels), shown),
            fp, labels.get("alertname", ""), labels.get("namespace", ""),
            end, fn, params, problem, self.redactor.mapping(r) if problem else None, checked,
        ))


_ANSWER_CACHE = 20_000


_SEP = "\x1e"  # record separator: whitespace to every pattern, so no match crosses it


def _redact_all(redactor: Redactor, parts: tuple[str, str], fn: str, params: Any, text_out: str) -> tuple[str, str, str]:
    """Redacted label lines, annotation lines and answer, in one pass over all three.

    Patterns never cross the separator, and a replacement inside a JSON string keeps it a JSON
    string; the answer is re-parsed anyway, and when a user pattern broke it the parameters are
    redacted value by value instead.
    """
    both = redactor.text(f"{parts[0]}{_SEP}{parts[1]}{_SEP}{text_out}").split(_SEP)
    if len(both) == 3 and (both[2] == text_out or _parses(both[2])):
        return both[0], both[1], both[2]
    return redactor.text(parts[0]), redactor.text(parts[1]), render_output(fn, redactor.value(params))


def _parses(text: str) -> bool:
    try:
        parse_output(text)
    except ParseError:
        return False
    return True


def run(records: Iterable[Any], settings: Settings, redactor: Redactor, progress: Progress = _noop) -> Result:
    """Everything between reading and writing. Raises :class:`BadInput` under ``min_examples``."""
    reader = _Reader(redactor)
    i = 0
    for i, r in enumerate(records, 1):
        reader.feed(r)
        if i % 5000 == 0:
            progress("read", 5000)
    progress("read", i % 5000 if reader.pending or reader.quarantine else 0)

    # Pass 2: join with labels and actions (read in full by now), validate against the catalog, render.
    index = ActionIndex(reader.actions)
    activity = ActionIndex(reader.activity)
    labelled = LabelIndex(reader.labels)
    ends = reader.ends
    window = settings.self_resolve_s
    quarantine = reader.quarantine
    stats: Counter = Counter()
    kept: list[Example] = []
    failed: list[Example] = []
    unlabelled: dict[tuple[str, str, str, str], dict] = {}
    pending = reader.pending
    pending.reverse()
    while pending:  # popping frees each alert as soon as its example exists
        stamp, source, incident, parts, fp, name, ns, end, fn, params, problem, raw, checked = pending.pop()
        text_in = f"{parts[0]}\n{parts[1]}" if parts[0] and parts[1] else parts[0] or parts[1]
        end = end or (ends.get((fp, stamp)) if ends else None)
        row = labelled.find(fp, name, ns, stamp) if labelled else None
        action = index.find(fp, name, ns, stamp, end) if index and row is None else None
        if row is not None:
            fn, params, evidence = row["lambda_function"], row.get("parameters") or {}, LABELS
            outcome, label_source = "unknown", row.get("source", LABELS)
            problem, raw, checked = None, {"alert": {"input": text_in}, "label": row}, None
        elif action is not None:
            fn, params, evidence = action["lambda_function"], action.get("parameters") or {}, ACTION
            outcome, label_source = action.get("outcome", "unknown"), action.get("source", "runbook")
            problem, raw, checked = None, {"alert": {"input": text_in}, "action": action}, None
        elif fn:
            outcome, label_source, evidence = "unknown", ANNOTATION, ANNOTATION
        elif self_resolved(stamp, end, window) and not (activity and activity.find(fp, name, ns, stamp, end)):
            fn, params, outcome, label_source, evidence = NONE, {}, "unknown", SELF_RESOLVED, SELF_RESOLVED
            problem, checked = None, None
        else:
            # No evidence: kept out of every split, listed for a person to label.
            key = (fp, name, ns, stamp)
            if key not in unlabelled:
                head, _, tail = redactor.text(f"{parts[0]}{_SEP}{parts[1]}").partition(_SEP)
                unlabelled[key] = {"fingerprint": fp, "alertname": name, "namespace": ns, "startsAt": stamp,
                                   "endsAt": end or "", "source": source,
                                   "alert": f"{head}\n{tail}" if head and tail else head or tail}
            elif end and not unlabelled[key]["endsAt"]:
                unlabelled[key]["endsAt"] = end
            continue
        if problem is None:
            if checked is None:
                why = problems(fn, params)
                checked = ("; ".join(why), None) if why else (None, render_output(fn, params))
            problem = checked[0]
        if problem is not None:
            q = rec.Quarantined.of(source, "", problem, raw or {"input": text_in})
            quarantine.append(redactor.mapping(dict(q)))
            continue
        head, tail, text_out = _redact_all(redactor, parts, fn, params, checked[1])
        text_in = f"{head}\n{tail}" if head and tail else head or tail
        norm = normalize(f"{head}{_SEP}{tail}{_SEP}{text_out}").split(_SEP)  # no mask crosses _SEP
        if len(norm) != 3:  # a value carried the separator itself
            norm = [normalize(head), normalize(tail), normalize(text_out)]
        n_head = norm[0]
        # The group comes from what the example says, not from the raw record: two records that
        # redact and normalize to the same alert are one group, so whichever of them survives
        # deduplication, the example lands in the same split.
        group = group_digest(f"incident:{incident}" if incident else f"alert:{n_head}")
        ex = (stamp, hashlib.sha256(f"{text_in}\0{text_out}".encode()).digest()[:16], source, fn,
              outcome, label_source, group, text_in, text_out, hash((n_head, norm[1])), hash(norm[2]), evidence)
        (failed if outcome == "failure" and not settings.include_failed else kept).append(ex)
    progress("label", len(kept) + len(failed))

    kept.sort()  # oldest first, then by content digest: the survivor of duplicates is stable
    # hash() is enough to spot duplicates within one process, at a fraction of the memory.
    seen_exact: set[bytes] = set()
    seen_norm: set[int] = set()
    answer_of: dict[int, int] = {}
    unique: list[Example] = []
    for ex in kept:
        if ex[1] in seen_exact:
            stats["duplicates_exact"] += 1
            continue
        seen_exact.add(ex[1])
        n_in, n_out = ex[9], ex[10]
        key = hash((n_in, n_out))
        if key in seen_norm:
            stats["duplicates_normalized"] += 1
            continue
        seen_norm.add(key)
        if answer_of.setdefault(n_in, n_out) != n_out:
            stats["conflicting_answers"] += 1  # same alert, different answers: kept, reported
        unique.append(ex)
    del kept, seen_exact, seen_norm, answer_of
    progress("dedupe", len(unique))

    dropped = max(0, len(unique) - settings.max_examples)
    if dropped:
        unique = unique[dropped:]  # oldest go first: max_examples keeps the newest
    if len(unique) < settings.min_examples:
        raise BadInput(
            f"dataset {settings.name}: {len(unique)} valid examples, fewer than min_examples "
            f"{settings.min_examples} ({sum(reader.read.values())} alerts read, {len(unlabelled)} unlabelled, "
            f"{stats['duplicates_exact'] + stats['duplicates_normalized']} "
            f"duplicates removed, {len(quarantine)} quarantined, {len(failed)} failed remediations excluded); "
            "add sources, label alerts (`sre-llm dataset unlabelled SPEC`) or lower dataset.min_examples"
        )

    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in unique:
        splits[assign_digest(ex[6], settings.train, settings.validation)].append(ex)
    progress("split", len(unique))

    by_function: dict[str, Counter] = defaultdict(Counter)
    by_source: dict[str, Counter] = defaultdict(Counter)
    for s, exs in splits.items():
        for ex in exs:
            by_function[s][ex[3]] += 1
            by_source[ex[2]][s] += 1
    read = reader.read
    times = [ex[0] for ex in unique]
    reasons = Counter(q["reason"] for q in quarantine)
    result_stats = {
        "examples": len(unique),
        "splits": {s: len(splits[s]) for s in SPLITS},
        "groups": {s: len({ex[6] for ex in splits[s]}) for s in SPLITS},
        "functions": {s: dict(sorted(by_function[s].items())) for s in SPLITS},
        "sources": {src: {"alerts_read": read[src], **{s: by_source[src][s] for s in SPLITS}}
                    for src in sorted(set(read) | set(by_source))},
        "labels": dict(sorted(Counter(ex[5] for ex in unique).items())),
        "evidence": _evidence(unique),
        "unlabelled": len(unlabelled),
        "outcomes": dict(sorted(Counter(ex[4] for ex in unique).items())),
        "duplicates": {"exact": stats["duplicates_exact"], "normalized": stats["duplicates_normalized"]},
        "conflicting_answers": stats["conflicting_answers"],
        "quarantined": {"total": len(quarantine), "reasons": dict(sorted(reasons.items()))},
        "failed_excluded": len(failed),
        "dropped_over_max": dropped,
        "actions_read": len(reader.actions),
        "redactions": redactor.totals(),
        "time_range": {"first": min(times), "last": max(times)} if times else None,
        "split_fractions": {"train": settings.train, "validation": settings.validation, "test": settings.test},
    }
    rows = sorted(unlabelled.values(), key=lambda r: (r["startsAt"], r["fingerprint"], r["alertname"], r["namespace"]))
    return Result(splits, quarantine, failed, result_stats, rows)


def _evidence(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """function → evidence kind → examples (what says each label is true)."""
    table: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        table[ex[3]][ex[11]] += 1
    return {fn: dict(sorted(c.items())) for fn, c in sorted(table.items())}

