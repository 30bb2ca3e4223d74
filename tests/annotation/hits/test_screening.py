"""The spam screen's likelihood-ratio test (annotation/services/screening.py) on answers of known kinds."""

import numpy as np

from annotation.services.screening import SPAM_LOG_LR, spam_log_lr


def _answers(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n answers to reference items (70% present, posteriors 0.97 / 0.03) by a worker of this kind."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.7
    reference = np.where(truth, 0.97, 0.03)
    if kind == "always_yes":
        says = np.ones(n, bool)
    elif kind == "always_no":
        says = np.zeros(n, bool)
    elif kind == "random":
        says = rng.random(n) < 0.5
    else:  # honest, right with probability `kind`
        says = np.where(rng.random(n) < float(kind), truth, ~truth)
    return says.astype(int), reference


def _llr(kind: str, n: int, seed: int) -> float:
    says, reference = _answers(kind, n, seed)
    return float(spam_log_lr(np.zeros(n, dtype=np.intp), says, reference, 1)[0])


def test_constant_answers_are_caught_within_thirty_reference_answers():
    assert all(_llr(kind, 30, seed) >= SPAM_LOG_LR for kind in ("always_yes", "always_no") for seed in range(20))


def test_random_clicking_is_caught_within_a_few_hundred_reference_answers():
    assert sum(_llr("random", 200, seed) >= SPAM_LOG_LR for seed in range(50)) >= 40
    assert sum(_llr("random", 300, seed) >= SPAM_LOG_LR for seed in range(50)) >= 45


def test_honest_workers_are_not_blocked_even_when_noisy():
    for accuracy in ("0.95", "0.8", "0.7", "0.65"):
        assert max(_llr(accuracy, 300, seed) for seed in range(50)) < SPAM_LOG_LR
    assert max(_llr("0.8", 10, seed) for seed in range(200)) < SPAM_LOG_LR  # no early false alarm


def test_workers_are_scored_independently_in_one_call():
    yes, ref_yes = _answers("always_yes", 40, 1)
    good, ref_good = _answers("0.95", 40, 2)
    workers = np.repeat([0, 1], 40)
    llr = spam_log_lr(workers, np.concatenate([yes, good]), np.concatenate([ref_yes, ref_good]), 3)
    assert llr[0] >= SPAM_LOG_LR > 0 > llr[1] and llr[2] == 0
