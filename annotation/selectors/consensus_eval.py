"""A campaign's votes in the terms of the consensus evaluation (``manage.py consensus_eval --campaign N``).

Items are candidates, workers are accounts, labels are "0" (absent) and "1" (present); "can't tell"
answers carry no vote, as in the refit. Gold is the campaign's gold items (the refit clamps them; the
evaluation shows them to ``synsight`` only and scores no method on them). Truth, for scoring, is the demo
ground truth when the campaign's candidates are demo images (as in the crowd simulator's campaigns), else
none. Every vote is read, including those of workers blocked since: the point is to compare methods on what
the crowd said.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Campaign, GoldItem, Vote
from annotation.selectors.demo import DemoTruthMissing, campaign_synset_ids, demo_truth_by_candidate

LABELS = ("0", "1")


@dataclass(frozen=True)
class CampaignEvalRows:
    votes: list[tuple[str, str, str]]
    gold: list[tuple[str, str]]
    truth: list[tuple[str, str]]  # empty unless the campaign's images are demo images


def campaign_eval_rows(*, campaign: Campaign) -> CampaignEvalRows:
    rows = (
        Vote.objects.filter(hit__campaign=campaign, answer__lt=Vote.Answer.CANT_TELL)
        .order_by("id")
        .values_list("candidate_id", "worker_id", "answer")
    )
    votes = [(str(c), str(w), str(a)) for c, w, a in rows.iterator(chunk_size=50_000)]
    voted = {int(v[0]) for v in votes}
    in_campaign = Vote.objects.filter(hit__campaign=campaign).values("candidate_id")
    gold = [
        (str(c), str(int(present)))
        for c, present in GoldItem.objects.filter(candidate_id__in=in_campaign).values_list("candidate_id", "present")
        if c in voted
    ]
    try:
        demo = demo_truth_by_candidate(synset_ids=campaign_synset_ids(campaign))
    except DemoTruthMissing:
        demo = {}
    truth = [(str(c), str(int(t.positive))) for c, t in demo.items() if c in voted]
    return CampaignEvalRows(votes=votes, gold=gold, truth=truth)
