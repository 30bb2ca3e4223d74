"""``manage.py consensus_eval --campaign N``: the engine measured on a campaign's own votes inside the app,
scored against the demo ground truth, with the campaign's gold shown to ``synsight`` only."""

import json
import re
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation import demo_images as demo
from annotation.models import GoldItem, Vote
from annotation.selectors.demo import demo_truth_by_candidate
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import qualify
from workers.roles import Role
from workers.services import account_create

CIRCLE, SQUARE = demo.BY_LABEL["circle"].wnid, demo.BY_LABEL["square"].wnid


def run(*args: str) -> str:
    out = StringIO()
    call_command("consensus_eval", *args, stdout=out)
    return out.getvalue()


def label_until_done(campaign, workers: dict[str, str]) -> None:
    """Each worker answers every HIT it gets: ``truthful`` from the demo truth, ``yes`` always present."""
    truth = demo_truth_by_candidate()
    for name, kind in workers.items():
        worker = account_create(username=name, password="a-long-pass-phrase-9", role=Role.WORKER)
        qualify(worker, campaign)
        for _ in range(50):
            hit = hit_next(worker=worker, campaign=campaign)
            if hit is None:
                break
            answers = [
                {"item": item.id, "ms": 900, "answer": "present" if kind == "yes" or truth[item.candidate_id].positive
                 else "absent"}
                for item in hit.items.order_by("position")
            ]  # fmt: skip
            hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key=uuid.uuid4().hex)


def test_a_campaigns_votes_are_scored_against_the_demo_truth_with_its_gold_shown_to_synsight(make_demo_campaign):
    campaign = make_demo_campaign(name="eval shapes", wnids=[CIRCLE, SQUARE], per_synset=12)
    campaign.max_votes = campaign.min_votes = 3
    campaign.save(update_fields=["max_votes", "min_votes"])
    label_until_done(campaign, {"ann": "truthful", "bob": "truthful", "cat": "yes"})

    report = json.loads(run("--campaign", str(campaign.id), "--json"))

    votes = Vote.objects.filter(hit__campaign=campaign, answer__lt=2)
    voted = set(votes.values_list("candidate_id", flat=True))
    gold = set(GoldItem.objects.filter(candidate_id__in=voted).values_list("candidate_id", flat=True))
    assert voted and gold  # the crowd saw real and gold items
    assert report["synsight"]["gold"] == len(gold) and report["mv"]["gold"] == 0
    assert {report[m]["scored"] for m in report} == {len(voted - gold)}
    # Two truthful workers of three: majority vote and synsight get every scored item right
    assert report["mv"]["correct"] == report["mv"]["scored"]
    assert report["synsight"]["correct"] == report["synsight"]["scored"]

    table = run("--campaign", str(campaign.id), "--method", "mv", "--method", "synsight")
    assert f"{len(voted - gold)}/{len(voted - gold)}" in table
    assert f"synsight and kinds were shown {len(gold)} gold items" in table


def test_campaign_errors_are_sentences(make_demo_campaign):
    campaign = make_demo_campaign(name="quiet shapes", wnids=[CIRCLE], per_synset=4)
    with pytest.raises(CommandError, match=re.escape(f"Campaign {campaign.id} (“quiet shapes”) has no votes yet.")):
        run("--campaign", str(campaign.id))
    with pytest.raises(CommandError, match=re.escape("Campaign 999999 does not exist.")):
        run("--campaign", "999999")
    with pytest.raises(CommandError, match=re.escape("--truth goes with --votes")):
        run("--campaign", str(campaign.id), "--truth", "truth.csv")
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("--campaign", str(campaign.id), "--votes", "votes.csv")
    with pytest.raises(CommandError, match="one of the arguments --votes --campaign is required"):
        run("--json")
