"""The simulated workers (annotation/simulator/workers.py): pure, seeded, and each kind behaves as its
docstring says."""

import numpy as np
import pytest

from annotation import demo_images as demo
from annotation.simulator import Blackboard, ItemTruth, crowd_make, kind_counts, parse_mix
from annotation.simulator.workers import COPYCAT_MAX_MS, SimWorker

SQUARE, RECTANGLE, RHOMBUS, CIRCLE, STAR = (demo.BY_LABEL[k].wnid for k in ("square", "rectangle", "rhombus",
                                                                           "circle", "star"))  # fmt: skip


def items(n: int, *, query: str = SQUARE, present: tuple[str, ...] = (SQUARE,)) -> list[ItemTruth]:
    return [ItemTruth(key=f"{query}/{i}", query_wnid=query, present=frozenset(present)) for i in range(n)]


def worker(kind: str, **traits) -> SimWorker:
    defaults = {"sensitivity": 0.95, "specificity": 0.95, "median_ms": 2000.0}
    return SimWorker(index=0, kind=kind, seed=3, **{**defaults, **traits})


def test_mix_is_parsed_normalised_and_spammer_splits_into_four_kinds():
    mix = parse_mix("reliable:0.6,noisy:0.25,spammer:0.1,adversarial:0.05")

    assert mix == pytest.approx({"reliable": 0.6, "noisy": 0.25, "random": 0.025, "always_yes": 0.025,
                                 "always_no": 0.025, "copycat": 0.025, "adversarial": 0.05})  # fmt: skip
    assert parse_mix("reliable:3,noisy:1") == {"reliable": 0.75, "noisy": 0.25}


@pytest.mark.parametrize("bad", ["", "reliable", "alien:0.5", "reliable:-1", "reliable:x"])
def test_bad_mix_is_refused_with_a_sentence(bad):
    with pytest.raises(ValueError, match=r"kind|mix|share"):
        parse_mix(bad)


def test_counts_follow_the_mix_exactly():
    counts = kind_counts(200, parse_mix("reliable:0.6,noisy:0.25,spammer:0.1,adversarial:0.05"))

    assert counts == {"reliable": 120, "noisy": 50, "random": 5, "always_yes": 5, "always_no": 5, "copycat": 5,
                      "adversarial": 10}  # fmt: skip


def test_crowd_is_reproducible_under_a_seed_and_differs_across_seeds():
    a, b, c = crowd_make(50, seed=7), crowd_make(50, seed=7), crowd_make(50, seed=8)
    hit = items(24) + items(6, present=(RECTANGLE,))

    assert [(w.kind, w.sensitivity, w.median_ms, w.leader) for w in a] == [
        (w.kind, w.sensitivity, w.median_ms, w.leader) for w in b
    ]
    assert [w.answer_hit(hit, hit_no=2) for w in a] == [w.answer_hit(hit, hit_no=2) for w in b]
    assert [w.kind for w in a] != [w.kind for w in c]


def test_an_answer_does_not_depend_on_the_order_images_arrive_in():
    w = crowd_make(10, "noisy:1", seed=2)[0]
    hit = items(12) + items(12, present=(RECTANGLE,))

    forward = w.answer_hit(hit, hit_no=1)
    backward = w.answer_hit(hit[::-1], hit_no=1)

    assert forward == backward[::-1]


def test_confusable_negatives_are_hard_and_mistaken_more_often():
    confusable = items(4000, present=(RECTANGLE,))  # a rectangle among square candidates
    plain = items(4000, present=(STAR,))
    honest = worker("reliable", specificity=0.9)

    assert confusable[0].hard and not confusable[0].positive and not plain[0].hard
    assert not items(1, query=RHOMBUS, present=(STAR,))[0].hard and items(1, query=RHOMBUS, present=(SQUARE,))[0].hard
    wrong_hard = np.mean([honest.answer(i)[0] for i in confusable])
    wrong_plain = np.mean([honest.answer(i)[0] for i in plain])
    assert wrong_plain == pytest.approx(0.1, abs=0.02)
    assert wrong_hard == pytest.approx(0.25, abs=0.03)  # HARD_FACTOR 2.5 times the error
    assert np.mean([honest.answer(i)[1] for i in confusable]) > np.mean([honest.answer(i)[1] for i in plain])


def test_circle_is_an_ellipse_so_a_circle_is_positive_for_ellipse():
    assert items(1, query=demo.BY_LABEL["ellipse"].wnid, present=(CIRCLE,))[0].positive


def test_spammers_ignore_the_image():
    positives, negatives = items(500), items(500, present=(STAR,))
    yes = worker("always_yes")
    no = worker("always_no")
    coin = worker("random")

    assert all(yes.answer(i)[0] for i in positives + negatives)
    assert not any(no.answer(i)[0] for i in positives + negatives)
    assert np.mean([coin.answer(i)[0] for i in positives]) == pytest.approx(0.5, abs=0.07)
    assert np.mean([coin.answer(i)[0] for i in negatives]) == pytest.approx(0.5, abs=0.07)


def test_copycat_replays_its_leaders_last_hit_in_under_300_ms():
    board = Blackboard()
    leader = SimWorker(0, "reliable", 1, 0.95, 0.95, 2000.0, blackboard=board)
    copycat = SimWorker(1, "copycat", 1, 0.5, 0.5, 650.0, leader=0, blackboard=board)
    first = copycat.answer_hit(items(5))
    leader_said = [p for p, _ in leader.answer_hit(items(3) + items(3, present=(STAR,)))]

    copied = copycat.answer_hit(items(8, query=CIRCLE, present=(CIRCLE,)))

    assert [p for p, _ in first] == [True] * 5  # nothing to copy yet: "present"
    assert [p for p, _ in copied] == [*leader_said, True, True]
    assert all(ms <= COPYCAT_MAX_MS for _, ms in first + copied)


def test_adversary_mostly_says_the_opposite():
    liar = worker("adversarial")
    hit = items(500) + items(500, present=(STAR,))

    wrong = np.mean([liar.answer(i)[0] != i.positive for i in hit])

    assert wrong == pytest.approx(0.85, abs=0.04)


def test_lazy_worker_slows_down_hit_after_hit():
    lazy = worker("lazy", fatigue=0.15)
    hit = items(200)

    times = [np.median([ms for _, ms in lazy.answer_hit(hit, hit_no=n)]) for n in (0, 5, 10)]

    assert times[0] < times[1] < times[2]
    assert times[2] / times[0] == pytest.approx(1.15**10, rel=0.15)


def test_response_times_are_lognormal_around_the_workers_speed():
    w = worker("reliable", median_ms=1500.0)
    times = np.array([w.answer(i)[1] for i in items(3000, present=(STAR,))])

    assert np.median(times) == pytest.approx(1500, rel=0.05)
    assert np.std(np.log(times)) == pytest.approx(0.45, abs=0.03)


def test_kinds_get_their_accuracy_from_their_distribution():
    crowd = crowd_make(400, "reliable:0.5,noisy:0.5", seed=4)
    reliable = [w.sensitivity for w in crowd if w.kind == "reliable"]
    noisy = [w.sensitivity for w in crowd if w.kind == "noisy"]

    assert np.mean(reliable) == pytest.approx(0.95, abs=0.01)
    assert np.mean(noisy) == pytest.approx(0.78, abs=0.02)
    assert min(reliable) > 0.75 and min(noisy) >= 0.5
