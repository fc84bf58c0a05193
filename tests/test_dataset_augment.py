"""Training-only augmentation: copied values swapped for random ones of the same shape."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sre_llm.dataset.augment import augment, reshape, rewrite
from sre_llm.answer.format import parse_output
from tests.test_dataset_build import cli, write_spec

ALERT = ("alertname: KubePodCrashLooping\nnamespace: shop\npod: web-7d4f9c6b8-x2x9q\ncontainer: web\nseverity: warning\n"
         "summary: Pod shop/web-7d4f9c6b8-x2x9q is crash looping\ndescription: container web restarted 5 times")
ANSWER = 'LambdaFunction: pod-restart\nParameters: {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}'


def test_reshape_keeps_the_shape():
    new = reshape("Web-7d4f.x2", random.Random(0))
    assert len(new) == 11 and new[0].isupper() and new[1:3].islower() and new[3] == "-" and new[4].isdigit()
    assert new[8] == "." and new[9].islower() and new[10].isdigit()


def test_rewrite_swaps_copied_values_consistently():
    text_in, text_out = rewrite(ALERT, ANSWER, random.Random(1))
    fn, params = parse_output(text_out, strict=True)
    assert fn == "pod-restart" and params["type"] == "pod"  # constants are not copied values
    assert params["name"] != "web-7d4f9c6b8-x2x9q" and params["namespace"] != "shop"
    lines = dict(line.split(": ", 1) for line in text_in.split("\n"))
    assert lines["pod"] == params["name"] and lines["namespace"] == params["namespace"]
    assert lines["summary"] == f"Pod {params['namespace']}/{params['name']} is crash looping"
    assert lines["container"] == "web" and lines["alertname"] == "KubePodCrashLooping"  # not copied: untouched
    assert list(lines) == ["alertname", "namespace", "pod", "container", "severity", "summary", "description"]


def test_rewrite_leaves_no_action_and_uncopied_answers():
    assert rewrite(ALERT, "LambdaFunction: none\nParameters: {}", random.Random(0)) is None
    assert rewrite(ALERT, 'LambdaFunction: pod-restart\nParameters: {"name": "elsewhere"}', random.Random(0)) is None
    assert rewrite(ALERT, "not an answer", random.Random(0)) is None


def test_augment_is_deterministic_and_takes_the_fraction():
    rows = [(0, f"{i:016x}", "s", "pod-restart", "", "", "g", ALERT, ANSWER, 0, 0) for i in range(400)]
    a, n = augment(rows, 0.5, seed=3)
    assert (a, n) == augment(rows, 0.5, seed=3)
    assert 150 <= n <= 250 and sum(x[8] != ANSWER for x in a) == n
    assert augment(rows, 0.5, seed=4)[0] != a
    assert augment(rows, 0.0)[1] == 0 and augment(rows, 1.0)[1] == 400


def test_build_augments_only_the_training_split(tmp_path: Path):
    plain, aug = tmp_path / "plain", tmp_path / "aug"
    for root, extra in ((plain, {}), (aug, {"augmentation": {"random_values": 0.5, "seed": 1}})):
        root.mkdir()
        spec = write_spec(root, **extra)
        assert cli("dataset", "build", str(spec), "--root", str(root)) == 0

    def split(root: Path, name: str) -> list[dict]:
        folder = root / "datasets" / "demo-data" / "current"
        return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]

    assert split(plain, "test") == split(aug, "test") and split(plain, "validation") == split(aug, "validation")
    before, after = split(plain, "train"), split(aug, "train")
    assert len(before) == len(after)
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    actions = [b for b in before if not b["output"].startswith("LambdaFunction: none")]
    assert 0.3 * len(actions) <= len(changed) <= 0.7 * len(actions)
    for b, a in changed:
        assert parse_output(b["output"])[0] == parse_output(a["output"])[0]
    card = json.loads((aug / "datasets" / "demo-data" / "current" / "dataset_card.json").read_text())
    assert card["stats"]["augmented"] == len(changed)
    assert "random copied values (augmentation): " in (aug / "datasets" / "demo-data" / "current" / "README.md").read_text()
