"""A campaign's votes in the terms of the consensus evaluation (``manage.py consensus_eval --campaign N``).

Items are candidates, workers are accounts, labels 0 (absent) and 1 (present); "can't tell" answers carry no
vote, as in the refit. Gold is the campaign's gold items (the refit clamps them; the evaluation shows them to
``synsight`` only and scores no method on them). Truth, for scoring, is the demo ground truth when the
campaign's candidates are demo images (as in the crowd simulator's campaigns), else none. Every vote is read,
including those of workers blocked since: the point is to compare methods on what the crowd said.

Votes are streamed into integer arrays by the refit's reader (``selectors.votes``), not into per-vote
strings: a campaign of ten million votes costs a few hundred megabytes here, not gigabytes.
"""

from __future__ import annotations

import numpy as np

from annotation.consensus.evaluate import CodedVotes
from annotation.models import Campaign, Candidate, GoldItem, Vote
from annotation.selectors.demo import DemoTruthMissing, campaign_synset_ids, demo_truth_by_candidate
from annotation.selectors.votes import campaign_vote_arrays


def _coded(known: dict[int, bool], candidate_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Item codes and 0/1 labels of the ``known`` candidates that have votes (``candidate_ids`` is sorted)."""
    if not len(candidate_ids) or not known:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids = np.fromiter(known, dtype=np.int64, count=len(known))
    values = np.fromiter(known.values(), dtype=np.int64, count=len(known))
    at = np.searchsorted(candidate_ids, ids)
    voted = (at < len(candidate_ids)) & (candidate_ids[np.minimum(at, len(candidate_ids) - 1)] == ids)
    order = np.argsort(at[voted], kind="stable")
    return at[voted][order], values[voted][order]


def campaign_eval_data(*, campaign: Campaign) -> tuple[CodedVotes, bool]:
    """The campaign's votes, gold and demo truth, coded for ``evaluate_coded``; and whether there is truth."""
    cand, work, answer, _ = campaign_vote_arrays(campaign=campaign, ordered=True)
    candidate_ids, items = np.unique(cand, return_inverse=True)
    worker_ids, workers = np.unique(work, return_inverse=True)
    in_campaign = Vote.objects.filter(hit__campaign=campaign).values("candidate_id")
    gold = dict(GoldItem.objects.filter(candidate_id__in=in_campaign).values_list("candidate_id", "present"))
    try:
        demo = demo_truth_by_candidate(synset_ids=campaign_synset_ids(campaign))
    except DemoTruthMissing:
        demo = {}
    truth = {c: t.positive for c, t in demo.items()}
    synsets = campaign.campaign_synsets.values_list("synset_id", flat=True)
    synset_of = dict(Candidate.objects.filter(synset_id__in=synsets).values_list("id", "synset_id"))
    _, groups = np.unique([synset_of.get(int(c), -1) for c in candidate_ids], return_inverse=True)
    gold_items, gold_labels = _coded(gold, candidate_ids)
    truth_items, truth_labels = _coded(truth, candidate_ids)
    data = CodedVotes(
        items=items.astype(np.int32),
        workers=workers.astype(np.int32),
        labels=answer.astype(np.int32),
        item_ids=[str(c) for c in candidate_ids.tolist()],
        worker_ids=[str(w) for w in worker_ids.tolist()],
        label_ids=["0", "1"],
        truth_items=truth_items,
        truth_labels=truth_labels,
        gold_items=gold_items,
        gold_labels=gold_labels,
        item_groups=groups.astype(np.int64),
    )
    return data, len(truth_items) > 0
