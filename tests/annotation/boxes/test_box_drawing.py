"""Simulated drawing behaviour (annotation/simulator/drawing.py): pure, no database."""

import numpy as np

from annotation.boxes import iou_matrix
from annotation.simulator import drawing
from annotation.simulator.drawing import BoxTruth
from annotation.simulator.workers import crowd_make

BIG = (100, 100, 400, 340)  # 300 x 240
SMALL = (20, 20, 50, 44)  # 30 x 24


def crowd(kind: str, n: int = 40):
    return crowd_make(n, f"{kind}:1", seed=3)


def truth(key: str, *instances, others=()) -> BoxTruth:
    return BoxTruth(key=key, width=512, height=384, instances=tuple(instances), others=tuple(others))


def edge_errors(target, kind="reliable"):
    errors = []
    for worker in crowd(kind):
        for i in range(10):
            said = drawing.draw(worker, truth(f"img{i}", target), [], hit_no=i)
            if said.answer == "box":
                errors.append(np.abs(np.subtract(said.box, target)))
    return np.median(np.array(errors), axis=0)


def test_edge_noise_grows_with_the_instance_and_with_a_noisier_worker():
    big, small = edge_errors(BIG), edge_errors(SMALL)
    # Ten times the width: roughly ten times the edge error (pixel rounding blurs the small one).
    assert 4 < big[0] / max(small[0], 0.5) < 20
    assert 3 <= big[0] <= 8  # 2.5 % of 300 px: a median absolute error of ~5 px
    assert edge_errors(BIG, "noisy")[0] > 1.5 * big[0]


def test_answers_are_reproducible_and_depend_on_what_is_shown():
    worker = crowd("noisy")[0]
    t = truth("img", BIG, SMALL)
    assert drawing.draw(worker, t, [], hit_no=2) == drawing.draw(worker, t, [], hit_no=2)
    shown = [BIG]
    answers = [drawing.draw(worker, t, shown, hit_no=h) for h in range(30)]
    boxes = [a.box for a in answers if a.answer == "box"]
    # With the big one boxed, the worker goes for the small instance (or, rarely, says "no more").
    assert boxes and np.mean(iou_matrix(boxes, [SMALL]).max(axis=1) >= 0.5) > 0.8


def test_honest_workers_say_no_more_or_not_present_when_nothing_is_left():
    for worker in crowd("reliable", 10):
        assert drawing.draw(worker, truth("a", BIG), [BIG]).answer in ("no_more", "box")  # a rare duplicate
        assert drawing.draw(worker, truth("b"), []).answer == "not_present"


def test_misses_loose_and_wrong_boxes_happen_at_about_their_rates():
    said = [drawing.draw(w, truth(f"i{i}", BIG), [], hit_no=i) for w in crowd("noisy") for i in range(25)]
    missed = np.mean([a.answer != "box" for a in said])
    assert 0.03 < missed < 0.15  # noisy: 8 %
    ious = iou_matrix([a.box for a in said if a.box], [BIG])[:, 0]
    assert 0.03 < np.mean(ious < 0.7) < 0.25  # loose (8 %), wrong (3 %) and the noise tail


def test_spammers_draw_as_their_kind():
    t = truth("img", BIG, others=[(420, 300, 480, 360)])
    (always_no,) = crowd_make(1, "always_no:1")
    (always_yes,) = crowd_make(1, "always_yes:1")
    (adversarial,) = crowd_make(1, "adversarial:1")
    assert drawing.draw(always_no, t, []).answer == "not_present"
    assert drawing.draw(always_yes, t, []).box == (0, 0, 512, 384)
    for h in range(20):
        said = drawing.draw(adversarial, t, [], hit_no=h)
        assert said.answer == "box" and iou_matrix([said.box], [BIG])[0, 0] < 0.3


def test_quality_and_coverage_answers_follow_the_truth_with_the_workers_accuracy():
    workers = crowd("reliable")
    t = truth("img", BIG, SMALL)
    tight, off = (102, 98, 398, 343), (300, 250, 500, 380)
    assert np.mean([drawing.judge_quality(w, t, tight)[0] == "yes" for w in workers]) > 0.9
    assert np.mean([drawing.judge_quality(w, t, off)[0] == "no" for w in workers]) > 0.9
    assert np.mean([drawing.judge_coverage(w, t, [tight, SMALL])[0] == "yes" for w in workers]) > 0.9
    assert np.mean([drawing.judge_coverage(w, t, [tight])[0] == "no" for w in workers]) > 0.9
    ms = [drawing.judge_quality(w, t, tight)[1] for w in workers]
    assert 500 < np.median(ms) < 10_000
