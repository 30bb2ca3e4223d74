"""SQUAREM-accelerated EM and the item-difficulty model, on simulated crowds (arrays only, no Django)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.consensus import fit_consensus, fit_dawid_skene, majority_vote, prepare_votes
from annotation.consensus.difficulty import fit_item_difficulty, prefer_difficulty


def two_coin_crowd(seed: int, n_items: int = 20_000, n_workers: int = 400, votes: int = 5):
    """Workers with their own sensitivity/specificity (0.55-0.95), 30% present, ``votes`` answers per item."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.3).astype(np.int64)
    sens, spec = rng.uniform(0.55, 0.95, n_workers), rng.uniform(0.55, 0.95, n_workers)
    items = np.repeat(np.arange(n_items), votes)
    workers = rng.integers(0, n_workers, items.size)
    p_yes = np.where(truth[items] == 1, sens[workers], 1.0 - spec[workers])
    labels = (rng.random(items.size) < p_yes).astype(np.int64)
    return items, workers, labels, truth


def hard_items(seed: int, spread: float, n_items: int = 200, n_workers: int = 30):
    """Every worker answers every item (like bluebirds); each item pulls everyone toward "yes" by a
    logit drawn from N(0, spread) whatever its class — a look-alike fools the whole crowd at once."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.5).astype(np.int64)
    skill = rng.normal(1.0, 0.6, n_workers)
    pull = rng.normal(0.0, spread, n_items) if spread else np.zeros(n_items)
    items = np.repeat(np.arange(n_items), n_workers)
    workers = np.tile(np.arange(n_workers), n_items)
    logit = np.where(truth[items] == 1, skill[workers], -skill[workers]) + pull[items]
    labels = (rng.random(items.size) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return items, workers, labels, truth


# --- SQUAREM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_accelerated_em_reaches_the_plain_fixed_point_in_fewer_passes(seed: int) -> None:
    items, workers, labels, truth = two_coin_crowd(seed)
    args = (items, workers, labels, truth.size, 400, 2)
    plain = fit_dawid_skene(*args, accelerate=False, tol=1e-6, label_tol=1e-6, max_iter=500)
    fast = fit_dawid_skene(*args, accelerate=True, tol=1e-6, label_tol=1e-6, max_iter=500)
    assert plain.converged and fast.converged
    assert fast.iterations < plain.iterations  # every EM step counted, the jumps' included
    assert np.abs(fast.posteriors - plain.posteriors).max() < 1e-4
    assert np.array_equal(fast.labels, plain.labels)
    assert np.allclose(fast.confusion, plain.confusion, atol=1e-3)


def test_refit_without_likelihood_gives_the_same_fit_and_nan_likelihood() -> None:
    items, workers, labels, truth = two_coin_crowd(2, n_items=2000)
    with_ll = fit_dawid_skene(items, workers, labels, truth.size, 400, 2)
    without = fit_dawid_skene(items, workers, labels, truth.size, 400, 2, likelihood=False)
    assert np.isfinite(with_ll.log_likelihood) and np.isnan(without.log_likelihood)
    assert np.array_equal(with_ll.posteriors, without.posteriors)


# --- item difficulty ----------------------------------------------------------------------------------


def test_item_terms_are_chosen_only_when_held_out_votes_ask_for_them() -> None:
    chosen_on_hard, chosen_on_plain = [], []
    for seed in range(3):
        for spread, bucket in ((2.0, chosen_on_hard), (0.0, chosen_on_plain)):
            items, workers, labels, truth = hard_items(seed, spread)
            decision, figures = prefer_difficulty(prepare_votes(items, workers, labels, truth.size, 30, 2))
            bucket.append(decision)
            assert set(figures) == {"difficulty_z", "difficulty_gain"}
    assert chosen_on_hard == [True, True, True]
    assert chosen_on_plain == [False, False, False]


def test_item_difficulty_beats_dawid_skene_when_items_fool_the_crowd() -> None:
    ds_correct = hard_correct = 0
    for seed in range(4):
        items, workers, labels, truth = hard_items(seed, 2.0)
        result = fit_consensus(items, workers, labels, truth.size, 30, 2)
        assert result.em_kind == "difficulty" and result.source == "em"
        hard_correct += int(np.sum(result.labels == truth))
        ds_correct += int(np.sum(fit_dawid_skene(items, workers, labels, truth.size, 30, 2).labels == truth))
    assert hard_correct >= ds_correct + 10  # 4 x 200 items: +2.5 points or more


def test_item_difficulty_anchors_gold_and_publishes_usable_worker_parameters() -> None:
    items, workers, labels, truth = hard_items(5, 2.0)
    votes = prepare_votes(items, workers, labels, truth.size, 30, 2)
    gold = np.arange(0, 200, 10)
    fit, pull = fit_item_difficulty(votes, gold_items=gold, gold_labels=truth[gold])
    assert fit.posteriors[gold].tolist() == np.eye(2)[truth[gold]].tolist()
    assert pull.shape == (200, 2) and np.all(np.isfinite(pull))
    assert np.allclose(fit.confusion.sum(axis=2), 1.0)
    # Average worker: says yes more often to present items than to absent ones.
    assert np.all(fit.prior_confusion[1, 1] > fit.prior_confusion[0, 1])
    # Sparse votes (3 per item) never even try the item terms.
    items3, workers3, labels3, truth3 = two_coin_crowd(3, n_items=3000, votes=3)
    decision, figures = prefer_difficulty(prepare_votes(items3, workers3, labels3, truth3.size, 400, 2))
    assert decision is False and figures == {}
    assert np.mean(majority_vote(items, workers, labels, 200, 2).labels == truth) < 0.8  # the data is hard
