"""The spam screen's speed test (annotation/services/screening.py): below INHUMAN_MEDIAN_MS a worker is blocked
after one HIT whatever they answer; in the fast band up to FAST_MEDIAN_MS only a worker whose answers to images
of known label do not show a look at them — a practised person scanning a grid of easy images is not a copycat."""

from collections import Counter

import pytest

from annotation.models import GoldItem, HitItem
from annotation.services import consensus_queue, screening
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import SHAPES, make_gold, qualify
from workers.models import WorkerProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold_campaign(make_campaign):
    """A running campaign with an accuracy bar and plenty of gold, half of it present: a newcomer's HITs hold
    about half gold (screening.NEWCOMER_GOLD_RATE)."""
    campaign = make_campaign(candidates=120, images_per_hit=24, gold_rate=0.1, min_worker_accuracy=0.65)
    make_gold(SHAPES[0], 40, present=True)
    make_gold(SHAPES[0], 40, present=False)
    return campaign


def _work(campaign, worker, hits: int, *, ms: int, right: bool) -> str | None:
    """``hits`` HITs by ``worker``, each weighed by a drain: gold answered by its truth when ``right``, else
    answers that alternate whatever the image (half "present": not a constant answerer, whom the bias test
    catches first); ``ms`` per image. Returns the block's reason, if any.

    The alternation runs separately over the images of each kind (present gold, absent gold, the rest), so the
    answers are independent of the truth by construction: alternating by position alone agreed with the gold
    on 25 of 33 images for one draw of gold slots, a worker the speed test rightly took for one who looks."""
    qualify(worker, campaign)
    turns = Counter()
    for _ in range(hits):
        hit = hit_next(worker=worker, campaign=campaign)
        items = list(HitItem.objects.filter(hit=hit).order_by("position"))
        truth = dict(GoldItem.objects.filter(candidate__in=[i.candidate_id for i in items]).values_list(
            "candidate_id", "present"))  # fmt: skip
        answers = []
        for item in items:
            kind = truth.get(item.candidate_id)  # True, False or None (not gold)
            turns[kind] += 1
            present = bool(kind) if right else turns[kind] % 2 == 1
            answers.append({"item": item.id, "answer": "present" if present else "absent", "ms": ms})
        hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key=f"speed-{hit.id:06d}")
        consensus_queue.hits_drain()
        profile = WorkerProfile.objects.get(user=worker)
        if profile.blocked:
            return profile.blocked_reason
    return None


def test_a_fast_worker_whose_answers_are_right_is_not_blocked(gold_campaign, worker):
    # 200 ms an image: a 24-image HIT in under five seconds, which the one 300 ms bar took for a copycat
    assert _work(gold_campaign, worker, 4, ms=200, right=True) is None
    assert screening.worker_verdict(worker_id=worker.id, campaign=gold_campaign) is None


def test_a_fast_worker_whose_answers_do_not_follow_the_images_is_blocked_by_the_second_hit(gold_campaign, worker):
    reason = _work(gold_campaign, worker, 4, ms=200, right=False)

    assert reason is not None and reason.startswith("Answers faster than most people can look (median 200 ms")
    assert WorkerProfile.objects.get(user=worker).hits_done == screening.FAST_JUDGE_ANSWERS // 24


def test_under_the_inhuman_bar_even_right_answers_are_blocked_after_one_hit(gold_campaign, worker):
    reason = _work(gold_campaign, worker, 3, ms=80, right=True)

    assert reason == "Answers faster than a person can look (median 80 ms per image)."
    assert WorkerProfile.objects.get(user=worker).hits_done == 1


def test_the_refit_spares_a_fast_worker_its_references_show_looking(gold_campaign, worker):
    from annotation.services.refit import campaign_refit

    _work(gold_campaign, worker, 3, ms=200, right=True)
    campaign_refit(campaign_id=gold_campaign.id)

    assert not WorkerProfile.objects.get(user=worker).blocked
    # by time alone they would be a suspect once the trial says no, or says nothing by its deadline
    assert screening.speed_suspects([worker.id], {worker.id: False}) != {}
    assert screening.speed_suspects([worker.id], {worker.id: True}) == {}
    assert screening.speed_suspects([worker.id]) == {}  # 72 answers: before the deadline
    _work(gold_campaign, worker, 1, ms=200, right=True)
    assert WorkerProfile.objects.get(user=worker).answers >= screening.FAST_DEADLINE_ANSWERS
    assert screening.speed_suspects([worker.id]) != {}
