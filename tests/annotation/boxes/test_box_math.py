"""The pure box math: IoU, ILSVRC's small-object threshold, aggregation and matching, on exact numbers."""

import numpy as np
import pytest

from annotation.boxes import (
    Score,
    aggregate_boxes,
    iou_matrix,
    match_boxes,
    small_object_threshold,
    weighted_median,
    worker_reliability,
)


def test_iou_matrix_is_exact_for_overlap_disjoint_and_identical_boxes():
    a = [[0, 0, 10, 10], [100, 100, 110, 120]]
    b = [[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]]
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0].tolist() == pytest.approx([50 / 150, 1.0, 0.0])
    assert iou[1].tolist() == [0.0, 0.0, 0.0]


def test_touching_boxes_do_not_overlap_because_x2_is_exclusive():
    assert iou_matrix([[0, 0, 10, 10]], [[10, 0, 20, 10]])[0, 0] == 0.0


@pytest.mark.parametrize("bad", [[[0, 0, 0, 10]], [[5, 0, 1, 10]], [[0, 0, np.nan, 1]], [[0, 0, np.inf, 1]]])
def test_invalid_boxes_are_refused(bad):
    with pytest.raises(ValueError):
        iou_matrix(bad, [[0, 0, 1, 1]])


def test_small_object_threshold_follows_ilsvrc():
    thr = small_object_threshold([[0, 0, 10, 10], [0, 0, 30, 30], [0, 0, 20, 15]])
    assert thr.tolist() == pytest.approx([100 / 400, 0.5, 300 / 750])


def test_weighted_median_takes_the_heavier_side_and_the_midpoint_on_a_tie():
    assert weighted_median([1, 2, 3], [1, 1, 1]) == 2
    assert weighted_median([1, 3], [1, 1]) == 2
    assert weighted_median([1, 3], [3, 1]) == 1
    assert weighted_median([10, 11, 40], [0.9, 0.9, 0.8]) == 11


def test_three_workers_around_one_instance_give_one_median_box_and_a_loose_box_does_not_move_it():
    boxes = [[10, 10, 50, 50], [12, 10, 52, 50], [10, 12, 50, 52], [10, 10, 90, 50]]  # last: loose right edge
    result = aggregate_boxes(boxes, [0, 1, 2, 3], iou_threshold=0.5)
    assert result.boxes.tolist() == [[10, 10, 51, 50]]
    assert result.cluster.tolist() == [0, 0, 0, 0]
    assert result.workers.tolist() == [4]


def test_a_workers_duplicate_box_is_absorbed_and_never_output():
    boxes = [[10, 10, 50, 50], [11, 11, 50, 50], [200, 200, 240, 240]]
    result = aggregate_boxes(boxes, [0, 0, 1])
    assert result.boxes.tolist() == [[10, 10, 50, 50], [200, 200, 240, 240]]
    assert result.workers.tolist() == [1, 1]
    assert result.cluster.tolist() == [0, 0, 1]


def test_reliability_decides_the_median():
    boxes = [[10, 10, 50, 50], [15, 15, 55, 55], [15, 15, 55, 55]]
    trusted = aggregate_boxes(boxes, [0, 1, 2], [1.0, 0.2, 0.2])
    assert trusted.boxes.tolist() == [[10, 10, 50, 50]]
    assert trusted.support.tolist() == pytest.approx([1.4])
    equal = aggregate_boxes(boxes, [0, 1, 2])
    assert equal.boxes.tolist() == [[15, 15, 55, 55]]


def test_small_objects_cluster_under_the_ilsvrc_tolerance_only():
    boxes = [[0, 0, 8, 8], [4, 0, 12, 8]]  # IoU 1/3: below 0.5, above 64/324
    assert len(aggregate_boxes(boxes, [0, 1]).boxes) == 1
    assert len(aggregate_boxes(boxes, [0, 1], small_object=False).boxes) == 2


def test_adjacent_instances_do_not_chain_into_one():
    boxes = [[0, 0, 40, 40], [48, 0, 88, 40], [20, 0, 68, 40]]  # the third straddles both
    result = aggregate_boxes(boxes, [0, 1, 2], min_workers=1)
    assert len(result.boxes) >= 2


def test_min_workers_drops_boxes_nobody_corroborates():
    boxes = [[10, 10, 50, 50], [11, 10, 51, 50], [300, 300, 340, 340]]
    result = aggregate_boxes(boxes, [0, 1, 2], min_workers=2)
    assert result.boxes.tolist() == [[10.5, 10, 50.5, 50]]
    assert result.cluster.tolist() == [0, 0, -1]


def test_matching_counts_duplicates_and_mean_iou():
    truth = np.array([[0, 0, 10, 10], [100, 100, 120, 120]], float)
    pred = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [300, 300, 310, 310]], float)
    match = match_boxes(pred, truth)
    assert match.pairs == [(0, 0, 1.0)]
    assert match.duplicates == 1
    score = Score()
    score.add(pred, truth)
    assert (score.matched, score.predicted, score.truth) == (1, 3, 2)
    assert score.precision == pytest.approx(1 / 3)
    assert score.recall == pytest.approx(0.5)
    assert score.f1 == pytest.approx(0.4)
    assert score.mean_iou == 1.0


def _noisy_crowd(seed: int):
    """60 images with 1-3 separated instances, 5 workers each drawing every instance with 2-px edge noise;
    worker 4 also adds one wrong box per image."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(60):
        n = int(rng.integers(1, 4))
        truth = np.array([[40 + 150 * k, 40, 40 + 150 * k + 80, 120 + 10 * k] for k in range(n)], float)
        boxes, workers = [], []
        for w in range(5):
            for t in truth:
                boxes.append(t + np.clip(np.round(rng.normal(0, 2, 4)), -4, 4))
                workers.append(w)
            if w == 4:
                boxes.append(np.array([10, 300, 50, 340], float))
                workers.append(w)
        images.append((truth, np.array(boxes), np.array(workers)))
    return images


def test_synthetic_noisy_crowd_is_recovered_exactly_with_two_workers_agreeing():
    images = _noisy_crowd(7)
    weights = worker_reliability([(b, w) for _, b, w in images], 5)
    assert weights[4] < weights[:4].min()
    score = Score()
    for truth, boxes, workers in images:
        score.add(aggregate_boxes(boxes, workers, weights, min_workers=2).boxes, truth)
    assert (score.precision, score.recall, score.duplicates) == (1.0, 1.0, 0)
    assert score.predicted == score.truth == sum(len(t) for t, _, _ in images)
    assert score.mean_iou > 0.93


def test_without_support_filter_the_wrong_boxes_are_the_only_false_positives():
    images = _noisy_crowd(7)
    score = Score()
    for truth, boxes, workers in images:
        score.add(aggregate_boxes(boxes, workers).boxes, truth)
    assert score.recall == 1.0
    assert score.predicted - score.matched == 60  # one wrong box per image, no duplicates
    assert score.duplicates == 0
