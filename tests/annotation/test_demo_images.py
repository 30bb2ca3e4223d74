"""The synthetic demo images: determinism, truth consistent with WordNet, tight boxes, files on disk."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotation import demo_images as demo

SEED, PER_SYNSET = 7, 40
WNID = {s.label: s.wnid for s in demo.SHAPES}


@pytest.fixture(scope="module")
def images() -> list[demo.DemoImage]:
    return list(demo.generate(seed=SEED, per_synset=PER_SYNSET))


def test_synset_table_is_consistent_with_wordnet() -> None:
    wnids = [s.wnid for s in demo.SHAPES]
    assert len(set(wnids)) == len(wnids) == 10
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert WNID == {
        "circle": "n13873502", "ellipse": "n13878306", "triangle": "n13879320", "square": "n13878634",
        "rectangle": "n13883346", "rhombus": "n13882961", "pentagon": "n13882201", "hexagon": "n13882276",
        "star": "n13881644", "heart": "n13865904",
    }  # fmt: skip
    assert demo.implied({WNID["square"]}) == {WNID["square"], WNID["rectangle"]}
    assert demo.implied({WNID["circle"]}) == {WNID["circle"], WNID["ellipse"]}
    assert demo.descendants(WNID["rectangle"]) == {WNID["rectangle"], WNID["square"]}
    assert demo.descendants(WNID["rhombus"]) == {WNID["rhombus"]}  # WordNet: a square is not a rhombus
    for s in demo.SHAPES:
        confusable = {WNID[label] for label in s.confusable}
        assert confusable and not confusable & demo.descendants(s.wnid), s.name


def test_same_seed_same_bytes_and_truth(images: list[demo.DemoImage]) -> None:
    some = (WNID["square"], WNID["heart"])
    again = list(demo.generate(seed=SEED, per_synset=PER_SYNSET, synsets=some))
    assert len(again) == 2 * PER_SYNSET
    assert again == [im for im in images if im.query_wnid in some]  # name, kind, objects, present, jpeg


def test_other_seed_other_images() -> None:
    a = list(demo.generate(seed=1, per_synset=3))
    b = list(demo.generate(seed=2, per_synset=3))
    assert all(x.jpeg != y.jpeg for x, y in zip(a, b, strict=True))


def test_counts_per_synset_and_negative_rate(images: list[demo.DemoImage]) -> None:
    assert len({im.name for im in images}) == len(images) == PER_SYNSET * len(demo.SHAPES)
    per_query = Counter(im.query_wnid for im in images)
    assert per_query == dict.fromkeys(WNID.values(), PER_SYNSET)
    for wnid in WNID.values():
        kinds = Counter(im.kind for im in images if im.query_wnid == wnid)
        assert kinds == {"positive": 28, "confusable": 6, "clutter": 6}
    small = Counter(im.kind for im in demo.generate(seed=3, per_synset=10, negative_rate=0.5))
    assert small == {"positive": 50, "confusable": 30, "clutter": 20}


def test_positives_show_the_query_and_negatives_never_do(images: list[demo.DemoImage]) -> None:
    for im in images:
        assert len(im.objects) <= 3
        assert im.present == {o.wnid for o in im.objects}
        if im.kind == "positive":
            assert im.positive and im.query_wnid in im.present, im.name
            assert 1 <= sum(o.wnid == im.query_wnid for o in im.objects) <= 3
        else:
            assert not im.positive, im.name
            assert not im.present & demo.descendants(im.query_wnid), im.name
    # Positive through WordNet's hierarchy: a square is a rectangle, a circle an ellipse.
    square = demo.DemoObject(WNID["square"], (0, 0, 9, 9))
    im = demo.DemoImage("x", WNID["rectangle"], "positive", (square,), frozenset({WNID["square"]}), b"", 9, 9)
    assert im.positive


def test_confusable_negatives(images: list[demo.DemoImage]) -> None:
    drawn: dict[str, set[str]] = {}
    for im in images:
        if im.kind == "confusable":
            assert im.objects, im.name
            allowed = {WNID[label] for label in demo.BY_WNID[im.query_wnid].confusable}
            assert im.present <= allowed, im.name
            drawn.setdefault(im.query_wnid, set()).update(im.present)
    assert WNID["rectangle"] in drawn[WNID["square"]]  # a rectangle among square candidates
    assert WNID["ellipse"] in drawn[WNID["circle"]]
    assert WNID["square"] in drawn[WNID["rhombus"]]
    assert all(drawn.get(w) for w in WNID.values())
    assert any(not im.objects for im in images if im.kind == "clutter")  # bare clutter exists too


def test_boxes_inside_image_and_apart(images: list[demo.DemoImage]) -> None:
    for im in images:
        decoded = Image.open(io.BytesIO(im.jpeg))
        assert decoded.format == "JPEG" and decoded.size == (im.width, im.height)
        assert (im.width, im.height) in demo.SIZES
        for o in im.objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= im.width and 0 <= y1 < y2 <= im.height, im.name
            assert min(x2 - x1, y2 - y1) >= 10, im.name
        for i, a in enumerate(im.objects):
            for b in im.objects[i + 1 :]:
                ax1, ay1, ax2, ay2 = a.box
                bx1, by1, bx2, by2 = b.box
                assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1, im.name


def _diff(seed: int, wnid: str, index: int, kind: str) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Per-pixel difference between the scene rendered with and without its shapes, and the boxes."""
    drawn, placed = demo.candidate(seed, wnid, index, kind)
    bare, _ = demo.candidate(seed, wnid, index, kind, draw_objects=False)
    diff = np.abs(np.asarray(drawn, np.int16) - np.asarray(bare, np.int16)).max(axis=2)
    return diff, [p.box for p in placed]


def _box_problems(diff: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[str]:
    """Tight = each side of the box touches the shape, and no shape pixel lies more than 3 px outside.

    Box truth counts pixels covered at least half; anti-aliasing, sharp tips and the blur add faint
    pixels 1-3 px beyond it, never more.
    """
    problems, near = [], np.zeros_like(diff, dtype=bool)
    for x1, y1, x2, y2 in boxes:
        near[max(y1 - 3, 0) : y2 + 3, max(x1 - 3, 0) : x2 + 3] = True
        sides = diff[y1, x1:x2], diff[y2 - 1, x1:x2], diff[y1:y2, x1], diff[y1:y2, x2 - 1]
        if min(side.max(initial=0) for side in sides) < 8:
            problems.append(f"a side of {(x1, y1, x2, y2)} does not touch the shape")
    if diff[~near].any():
        problems.append("shape pixels more than 3 px outside every box")
    return problems


@pytest.mark.parametrize("wnid", sorted(WNID.values()))
def test_boxes_are_tight_around_what_was_drawn(wnid: str, images: list[demo.DemoImage]) -> None:
    checked = 0
    for im in images:
        if im.query_wnid != wnid or not im.objects or checked == 20:
            continue
        index = int(im.name.rsplit("_", 1)[1])
        drawn, _ = demo.candidate(SEED, wnid, index, im.kind)
        buf = io.BytesIO()
        drawn.save(buf, format="JPEG", quality=demo.JPEG_QUALITY)
        assert buf.getvalue() == im.jpeg  # the render checked here is the published image
        diff, boxes = _diff(SEED, wnid, index, im.kind)
        assert boxes == [o.box for o in im.objects]
        assert _box_problems(diff, boxes) == [], im.name
        checked += 1
    assert checked == 20


@pytest.mark.parametrize("dx1, dy1, dx2, dy2", [(-3, 0, 0, 0), (0, 0, 0, 3), (3, 0, 0, 0), (0, 0, 0, -3), (3, 0, 3, 0)])
def test_a_box_off_by_3_px_is_caught(dx1: int, dy1: int, dx2: int, dy2: int) -> None:
    """Guard the guard: the check above rejects boxes grown, shrunk or shifted by 3 px."""
    diff, boxes = _diff(SEED, WNID["square"], 0, "positive")
    assert _box_problems(diff, boxes) == []
    x1, y1, x2, y2 = boxes[0]
    assert x1 >= 3 and y1 >= 3
    boxes[0] = (x1 + dx1, y1 + dy1, x2 + dx2, y2 + dy2)
    assert _box_problems(diff, boxes) != []


def test_write_dataset_and_cli(tmp_path: Path) -> None:
    out = demo.write_dataset(tmp_path / "a", seed=4, per_synset=3)
    records = [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]
    assert len(records) == 30
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(WNID.values())
    with (out / "truth.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(r["boxes"]) for r in records)
    for r in records:
        assert (out / r["file"]).is_file() and r["file"].startswith(r["query_wnid"] + "/")
        assert r["positive"] == (r["query_wnid"] in r["implied"]) == (r["kind"] == "positive")
        assert set(r["present"]) == {b["wnid"] for b in r["boxes"]}
    first = next(r for r in records if r["boxes"])
    row = next(row for row in rows if row["image"] == first["file"])
    box = first["boxes"][0]
    assert (row["wnid"], *map(int, (row["x1"], row["y1"], row["x2"], row["y2"]))) == (
        box["wnid"], box["x1"], box["y1"], box["x2"], box["y2"],
    )  # fmt: skip
    assert demo.main([str(tmp_path / "b"), "--seed", "4", "--per-synset", "3"]) == 0
    for name in ("truth.jsonl", "truth.csv", records[0]["file"]):
        assert (tmp_path / "b" / name).read_bytes() == (out / name).read_bytes()
