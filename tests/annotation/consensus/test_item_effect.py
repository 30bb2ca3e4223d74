"""Kinds of item within a class (look-alikes), marginalised into the posterior: annotation/consensus/item_effect.py."""

import numpy as np
import pytest

from annotation.consensus import fit_dawid_skene, item_effect, item_posteriors


def look_alike_crowd(seed: int, n_items: int = 12_000, votes: int = 6):
    """Noisy workers (accuracy Beta(16, 4.5), mean 0.78) answer four synsets' images; in synsets 0 and 1 half
    the negatives are look-alikes on which every worker's error is 2.5 times their usual (capped at 0.45)."""
    rng = np.random.default_rng(seed)
    n_workers = 150
    accuracy = np.clip(rng.beta(16, 4.5, n_workers), 0.5, 0.995)
    group = rng.integers(0, 4, n_items)
    present = rng.random(n_items) < 0.6
    look_alike = ~present & (group < 2) & (rng.random(n_items) < 0.5)
    items = np.repeat(np.arange(n_items), votes)
    workers = np.concatenate([rng.choice(n_workers, votes, replace=False) for _ in range(n_items)])
    error = 1 - accuracy[workers]
    error = np.where(look_alike[items], np.minimum(0.45, 2.5 * error), error)
    right = rng.random(len(items)) >= error
    labels = np.where(right, present[items], ~present[items]).astype(np.int64)
    return items, workers, labels, n_items, n_workers, group, present, look_alike


@pytest.fixture(scope="module")
def crowd():
    items, workers, labels, n_items, n_workers, group, present, look_alike = look_alike_crowd(seed=3)
    fit = fit_dawid_skene(items, workers, labels, n_items, n_workers, 2)
    loglik = item_effect.kind_log_likelihood(items, workers, labels, n_items, fit.confusion)
    shares = item_effect.fit_item_kinds(loglik, np.bincount(items, minlength=n_items), fit.class_prior, group, 4)
    return items, workers, labels, n_items, group, present, look_alike, fit, shares


def test_with_every_item_of_the_average_kind_the_posterior_is_plain_dawid_skene(crowd):
    items, workers, labels, n_items, _, _, _, fit, _ = crowd
    loglik = item_effect.kind_log_likelihood(items, workers, labels, n_items, fit.confusion)

    marginal = item_effect.posteriors(loglik, item_effect.neutral_shares(1)[0], fit.class_prior)

    np.testing.assert_allclose(
        marginal, item_posteriors(items, workers, labels, n_items, fit.confusion, fit.class_prior)
    )


def test_the_synsets_with_look_alikes_get_look_alike_kinds_and_the_others_do_not(crowd):
    *_, shares = crowd
    shifts = np.asarray(item_effect.SHIFTS)
    # Share of negatives on kinds harder than the refit's average negative (u > 0).
    hard = shares[:, 0, shifts > 0].sum(axis=1)

    assert hard[:2].min() > hard[2:].max() + 0.1, hard
    # The clean synsets' negatives are easier than the average over all four synsets, which the look-alikes
    # drag up: their mass sits at or below u = 0.
    assert shares[2:, 0, shifts <= 0].sum(axis=1).min() > 0.8, shares[2:, 0]


def test_acceptances_in_synsets_with_look_alikes_are_as_right_as_their_posteriors_say(crowd):
    items, workers, labels, n_items, group, present, _, fit, shares = crowd
    first5 = np.tile(np.arange(6), n_items) < 5
    args = (items[first5], workers[first5], labels[first5], n_items)
    plain = item_posteriors(*args, fit.confusion, fit.class_prior)[:, 1]
    kinds = item_effect.posteriors(
        item_effect.kind_log_likelihood(*args, fit.confusion), shares[group], fit.class_prior
    )[:, 1]
    in_look_alike_synsets = group < 2

    def wrong_and_expected(p):
        accepted = (p >= 0.997) & in_look_alike_synsets
        return int((accepted & ~present).sum()), float((1 - p[accepted]).sum())

    # Plain Dawid–Skene credits each "yes" on a look-alike with the evidence of a "yes" on a typical negative:
    # several times more acceptances go wrong than its posteriors allow for.
    wrong, expected = wrong_and_expected(plain)
    assert wrong > 4 * expected and wrong >= 5, (wrong, expected)
    # With the kinds marginalised the count of wrong acceptances is what the posteriors say (Poisson noise).
    wrong, expected = wrong_and_expected(kinds)
    assert wrong <= expected + 3 * np.sqrt(expected) + 1, (wrong, expected)
    # In the clean synsets nothing is lost: as many images accepted as plain Dawid–Skene accepts, within 5%.
    clean = ~in_look_alike_synsets
    assert (kinds[clean] >= 0.997).sum() >= 0.95 * (plain[clean] >= 0.997).sum()


def test_a_blocked_workers_votes_count_for_nothing():
    items = np.array([0, 0, 0, 1, 1])
    workers = np.array([0, 1, 2, 0, 2])
    labels = np.array([1, 1, 0, 1, 0])
    confusion = np.tile(np.array([[0.8, 0.2], [0.2, 0.8]]), (3, 1, 1))

    weighted = item_effect.kind_log_likelihood(items, workers, labels, 2, confusion, worker_weights=[1.0, 0.0, 1.0])
    keep = workers != 1
    without = item_effect.kind_log_likelihood(items[keep], workers[keep], labels[keep], 2, confusion)

    np.testing.assert_allclose(weighted, without)


def test_gold_items_enter_with_their_class_known():
    """Three workers say "no" to a hundred images of a synset and "yes" to two hundred; gold says half of the
    latter are negatives. Without gold a unanimous "yes" settles an image; with it, the synset's negatives
    include look-alikes that fool everybody, and it no longer does."""
    n_items = 300
    items = np.repeat(np.arange(n_items), 3)
    workers = np.tile(np.arange(3), n_items)
    labels = (items >= 100).astype(np.int64)
    confusion = np.tile(np.array([[0.8, 0.2], [0.2, 0.8]]), (3, 1, 1))
    loglik = item_effect.kind_log_likelihood(items, workers, labels, n_items, confusion)
    n_votes = np.full(n_items, 3)
    groups = np.zeros(n_items, dtype=np.intp)
    prior = [1 / 3, 2 / 3]

    blind = item_effect.fit_item_kinds(loglik, n_votes, prior, groups, 1)
    gold = np.arange(100, n_items, 2)
    told = item_effect.fit_item_kinds(
        loglik, n_votes, prior, groups, 1, gold_items=gold, gold_labels=np.zeros(len(gold), dtype=np.int64)
    )

    unanimous_yes = loglik[101:102]  # not a gold item
    assert item_effect.posteriors(unanimous_yes, blind[0], prior)[0, 1] > 0.99
    assert item_effect.posteriors(unanimous_yes, told[0], prior)[0, 1] < 0.97


def test_the_fit_is_repeatable_and_takes_a_bounded_sample_per_group(crowd):
    items, workers, labels, n_items, group, _, _, fit, shares = crowd
    loglik = item_effect.kind_log_likelihood(items, workers, labels, n_items, fit.confusion)
    n_votes = np.bincount(items, minlength=n_items)

    again = item_effect.fit_item_kinds(loglik, n_votes, fit.class_prior, group, 4)
    sampled = item_effect.fit_item_kinds(loglik, n_votes, fit.class_prior, group, 4, max_items=4 * 300)
    everything = item_effect.fit_item_kinds(loglik, n_votes, fit.class_prior, group, 4, max_items=None)

    np.testing.assert_array_equal(again, shares)
    assert not np.allclose(sampled, everything)  # 300 items per synset, against ~3,000
    np.testing.assert_allclose(sampled.sum(axis=2), 1.0)


def test_too_few_items_with_two_votes_keep_plain_dawid_skene(crowd):
    items, workers, labels, n_items, group, _, _, fit, _ = crowd
    few = items < item_effect.MIN_ITEMS - 1
    loglik = item_effect.kind_log_likelihood(items[few], workers[few], labels[few], n_items, fit.confusion)

    shares = item_effect.fit_item_kinds(loglik, np.bincount(items[few], minlength=n_items), fit.class_prior, group, 4)

    np.testing.assert_array_equal(shares, item_effect.neutral_shares(4))
