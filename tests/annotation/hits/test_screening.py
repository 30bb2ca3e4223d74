"""The spam screen's likelihood-ratio test (annotation/services/screening.py) on answers of known kinds."""

import statistics

import numpy as np

from annotation.services.screening import (
    ACCURACY_LOG_LR,
    ACCURACY_MIN_ANSWERS,
    BIAS_LOG_LR,
    SPAM_LOG_LR,
    accuracy_log_lr,
    bias_log_lr,
    gold_agrees_below_bar,
    spam_log_lr,
)


def _answers(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n answers to reference items (70% present, posteriors 0.97 / 0.03) by a worker of this kind."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.7
    reference = np.where(truth, 0.97, 0.03)
    return _says(kind, truth, rng), reference


def _says(kind: str, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a worker of this kind answers (1 present, 0 absent) to items whose true labels are ``truth``;
    an honest kind is its accuracy, e.g. "0.8"."""
    n = len(truth)
    if kind == "always_yes":
        says = np.ones(n, bool)
    elif kind == "always_no":
        says = np.zeros(n, bool)
    elif kind == "random":
        says = rng.random(n) < 0.5
    else:
        says = np.where(rng.random(n) < float(kind), truth, ~truth)
    return says.astype(int)


def _llr(kind: str, n: int, seed: int) -> float:
    says, reference = _answers(kind, n, seed)
    return float(spam_log_lr(np.zeros(n, dtype=np.intp), says, reference, 1)[0])


def test_constant_answers_are_caught_within_sixty_reference_answers():
    assert all(_llr(kind, 60, seed) >= SPAM_LOG_LR for kind in ("always_yes", "always_no") for seed in range(20))


def test_random_clicking_is_caught_only_after_hundreds_of_reference_answers():
    # The price of never blocking the noisiest honest workers (sensitivity or specificity near 0.6).
    assert sum(_llr("random", 300, seed) >= SPAM_LOG_LR for seed in range(50)) <= 15
    assert sum(_llr("random", 800, seed) >= SPAM_LOG_LR for seed in range(50)) >= 40


def test_honest_workers_are_not_blocked_even_when_noisy():
    for accuracy in ("0.95", "0.8", "0.7", "0.65"):
        assert max(_llr(accuracy, 300, seed) for seed in range(50)) < SPAM_LOG_LR
    assert max(_llr("0.8", 10, seed) for seed in range(200)) < SPAM_LOG_LR  # no early false alarm


def test_an_honest_worker_who_leans_to_present_is_not_taken_for_a_biased_spammer():
    """Sensitivity 0.8, specificity 0.56, on references 85% present: 71% right, "present" 77% of the time —
    a symmetric "right with probability >= 0.65" honest model lost to "present 77% whatever" by 9.4 nats
    over 133 answers and blocked such a simulated worker."""
    rng = np.random.default_rng(5)
    worst = -np.inf
    for _ in range(50):
        truth = rng.random(400) < 0.85
        says = np.where(truth, rng.random(400) < 0.8, rng.random(400) >= 0.56).astype(int)
        worst = max(worst, float(spam_log_lr(np.zeros(400, dtype=np.intp), says, np.where(truth, 0.97, 0.03), 1)[0]))
    assert worst < SPAM_LOG_LR


def test_workers_are_scored_independently_in_one_call():
    yes, ref_yes = _answers("always_yes", 40, 1)
    good, ref_good = _answers("0.95", 40, 2)
    workers = np.repeat([0, 1], 40)
    llr = spam_log_lr(workers, np.concatenate([yes, good]), np.concatenate([ref_yes, ref_good]), 3)
    assert llr[0] >= SPAM_LOG_LR > 0 > llr[1] and llr[2] == 0


def _soft(kind: str, n: int, seed: int, *, prevalence: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """n answers to items whose P(present) comes from other workers' votes: 0.9 or 0.1, and wrong one time
    in ten (the others erred)."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < prevalence
    reference = np.where(truth == (rng.random(n) < 0.9), 0.9, 0.1)
    return _says(kind, truth, rng), reference


def test_constant_answers_are_caught_by_the_bias_test_within_two_hits_of_unsure_references():
    for kind, prevalence in (("always_yes", 0.5), ("always_no", 0.5), ("always_no", 0.7)):
        assert all(bias_log_lr(*_soft(kind, 48, seed, prevalence=prevalence)) >= BIAS_LOG_LR for seed in range(50))


def test_the_bias_test_ignores_coin_flippers_and_honest_workers_whatever_their_accuracy():
    for kind in ("random", "0.95", "0.75", "0.6", "0.55"):
        assert max(bias_log_lr(*_soft(kind, 400, seed)) for seed in range(50)) < BIAS_LOG_LR / 2, kind
    # Items nobody is sure about (p = 1/2) say nothing against an honest worker's answer rate.
    says, _ = _soft("0.9", 200, 1)
    assert bias_log_lr(says, np.full(200, 0.5)) < 1.0


def _first_block(kind: str, seed: int, *, bar: float = 0.65, n: int = 240, look: int = 12) -> int | None:
    """After how many exact reference answers (half present, as gold is; a look every ``look`` answers, as
    the screen looks after every HIT) the accuracy-bar test blocks a worker of this kind, or None."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.5
    says = _says(kind, truth, rng)
    for m in range(ACCURACY_MIN_ANSWERS, n + 1, look):
        if accuracy_log_lr(says[:m], truth[:m].astype(float), bar) >= ACCURACY_LOG_LR:
            return m
    return None


def test_the_accuracy_bar_blocks_every_coin_flipper_within_ten_hits_of_gold():
    blocked = [_first_block("random", seed) for seed in range(50)]
    assert None not in blocked, blocked
    assert statistics.median(blocked) <= 72  # half within three 24-image HITs of references


def test_the_accuracy_bar_keeps_honest_workers_clear_of_it():
    for accuracy in ("0.8", "0.95"):
        assert [_first_block(accuracy, seed, n=400) for seed in range(100)] == [None] * 100, accuracy
    # Soft references (the others' posterior, 0.9 or 0.1 and wrong one time in ten) do not turn an honest
    # worker into a suspect either.
    for seed in range(50):
        says, reference = _soft("0.8", 400, seed)
        looks = range(ACCURACY_MIN_ANSWERS, 401, 12)
        assert max(accuracy_log_lr(says[:m], reference[:m], 0.65) for m in looks) < ACCURACY_LOG_LR


def test_the_accuracy_bar_blocks_a_constant_answerer_too_and_is_off_below_chance():
    says, reference = _answers("always_yes", 48, 1)
    assert accuracy_log_lr(says, reference, 0.65) >= ACCURACY_LOG_LR
    coin, reference = _answers("random", 400, 2)
    assert accuracy_log_lr(coin, reference, 0.5) < 1.0  # a bar at chance cannot tell a coin from a worker


def test_the_bar_blocks_only_when_the_workers_own_gold_answers_do_not_clear_them():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 16).astype(float)
    reliable = truth.copy()
    reliable[:2] = 1 - reliable[:2]  # 14 of 16 right
    coin_flipper = np.where(np.arange(16) % 2 == 0, truth, 1 - truth)

    assert not gold_agrees_below_bar(reliable, truth, 0.65)
    assert gold_agrees_below_bar(coin_flipper, truth, 0.65)
    assert not gold_agrees_below_bar(coin_flipper[:15], truth[:15], 0.65)  # too few gold answers to judge
