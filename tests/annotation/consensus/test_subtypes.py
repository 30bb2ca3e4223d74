"""Workers who err together (subtypes.py): found on a real crowd not used in development (ZenCrowd's US workers),
where Dawid–Skene fell 92 items below majority vote and the guard, without gold, could not see it."""

import numpy as np
import pytest

from annotation.consensus.dawid_skene import fit_dawid_skene
from annotation.consensus.guard import fit_consensus
from annotation.consensus.majority import majority_vote
from annotation.consensus.subtypes import SubtypeConfig, as_dawid_skene, fit_subtypes, prefer_subtypes
from annotation.consensus.votes import prepare_votes


def paired_crowd(seed: int, n: int = 1500, occasional: int = 30):
    """ZenCrowd's shape: a few workers answer every item, and two of them say "present" together to a quarter
    of the negatives (lures); one careful worker; two who answer at random, mostly "absent"; ``occasional``
    fairly careful workers with a hundred items each. 22% of the items are positive."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.22).astype(np.int64)
    lure = (truth == 0) & (rng.random(n) < 0.25)
    items, workers, labels = [], [], []

    def answer(worker: int, on: np.ndarray, p_yes: np.ndarray) -> None:
        items.append(on)
        workers.append(np.full(len(on), worker))
        labels.append((rng.random(len(on)) < p_yes).astype(np.int64))

    every = np.arange(n)
    for worker in (0, 1):
        answer(worker, every, np.where(truth == 1, 0.85, np.where(lure, 0.9, 0.05)))
    answer(2, every, np.where(truth == 1, 0.8, 0.04))
    answer(3, every, np.full(n, 0.17))
    answer(4, every, np.full(n, 0.2))
    for worker in range(5, 5 + occasional):
        on = rng.choice(n, 100, replace=False)
        answer(worker, on, np.where(truth[on] == 1, 0.75, 0.15))
    return np.concatenate(items), np.concatenate(workers), np.concatenate(labels), n, 5 + occasional, truth


def independent_crowd(seed: int, n: int = 1500, n_workers: int = 40, per_item: int = 5):
    """Dawid–Skene's own assumption: each worker errs on its own, at its own two rates."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.3).astype(np.int64)
    sens, spec = rng.uniform(0.6, 0.95, n_workers), rng.uniform(0.6, 0.95, n_workers)
    items = np.repeat(np.arange(n), per_item)
    workers = np.concatenate([rng.choice(n_workers, per_item, replace=False) for _ in range(n)])
    p_yes = np.where(truth[items] == 1, sens[workers], 1 - spec[workers])
    return items, workers, (rng.random(len(items)) < p_yes).astype(np.int64), n, n_workers, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_workers_who_err_together_are_told_apart_by_the_evidence_and_beat_majority_vote(seed):
    items, workers, labels, n, n_workers, truth = paired_crowd(seed)
    mv = majority_vote(items, workers, labels, n, 2).labels
    ds = fit_dawid_skene(items, workers, labels, n, n_workers, 2)
    assert (ds.labels == truth).sum() < (mv == truth).sum() - 20  # DS trusts the pair's agreement

    result = fit_consensus(items, workers, labels, n, n_workers, 2)

    assert (result.source, result.em_kind) == ("em", "subtypes")
    assert result.checks["subtype_gain"] > 100  # nats of evidence for the subtypes
    assert (result.labels == truth).sum() > (mv == truth).sum() + 20
    # What per-HIT updates use until the next refit: each worker's confusion with the subtypes summed out.
    assert np.allclose(result.model.confusion.sum(axis=2), 1.0)
    assert result.model.confusion.shape == (n_workers, 2, 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_workers_who_err_on_their_own_keep_dawid_skene(seed):
    items, workers, labels, n, n_workers, truth = independent_crowd(seed)

    result = fit_consensus(items, workers, labels, n, n_workers, 2)

    assert result.em_kind == "ds"
    assert result.checks["subtype_gain"] < 1.0  # the extra parameters do not pay for themselves
    mv = majority_vote(items, workers, labels, n, 2).labels
    assert (result.labels == truth).sum() >= (mv == truth).sum()


def test_gold_items_keep_their_class_and_the_choice_is_the_same_on_every_run():
    items, workers, labels, n, n_workers, _ = paired_crowd(0)
    votes = prepare_votes(items, workers, labels, n, n_workers, 2)
    unanimous_yes = [i for i in range(n) if labels[items == i].all()][:5]

    fit = fit_subtypes(votes, gold_items=unanimous_yes, gold_labels=[0] * 5)

    assert np.allclose(fit.posteriors[unanimous_yes], [1.0, 0.0])
    first, _ = prefer_subtypes(votes)
    second, _ = prefer_subtypes(votes)
    assert first is not None and np.array_equal(first.posteriors, second.posteriors)  # fixed seeds
    published = as_dawid_skene(first, votes, np.eye(2))
    assert np.array_equal(published.posteriors, first.posteriors)


def test_the_comparison_is_skipped_above_its_vote_limit():
    items, workers, labels, n, n_workers, _ = paired_crowd(0)
    votes = prepare_votes(items, workers, labels, n, n_workers, 2)

    assert prefer_subtypes(votes, SubtypeConfig(max_votes=len(items) - 1)) == (None, {})
