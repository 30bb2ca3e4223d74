"""The server's random draws (quiz items; a HIT's synset order, gold slots, gold items and item order) are
seeded by SECRET_KEY, the worker, the campaign and an ordinal (annotation/services/draws.py): the same state
gives the same draw, another key another one, and each HIT of a worker its own."""

import pytest
from django.db import transaction

from annotation.models import HitItem
from annotation.services import screening
from annotation.services.hits import hit_next
from annotation.services.quiz import quiz_start, quiz_submit
from tests.annotation.hits.conftest import make_gold, qualify

pytestmark = pytest.mark.django_db


class _Undo(Exception):
    pass


def _lease_and_undo(worker, campaign) -> tuple[int, list[tuple[int, bool]]]:
    """The HIT hit_next would lease now (synset, (candidate, is_gold) in position order), rolled back."""
    try:
        with transaction.atomic():
            hit = hit_next(worker=worker, campaign=campaign)
            items = list(HitItem.objects.filter(hit=hit).order_by("position").values_list("candidate_id", "is_gold"))
            seen = (hit.synset_id, items)
            raise _Undo
    except _Undo:
        return seen


def test_same_state_leases_the_same_hit_and_another_key_another(make_campaign, worker, settings):
    campaign = make_campaign(candidates=40, images_per_hit=10, gold_rate=0.3)
    make_gold("n13873502", 12)
    qualify(worker, campaign)

    first = _lease_and_undo(worker, campaign)
    again = _lease_and_undo(worker, campaign)
    settings.SECRET_KEY = "another secret key for this test"
    other = _lease_and_undo(worker, campaign)

    assert again == first
    assert any(is_gold for _, is_gold in first[1])  # the draw had gold slots to place
    assert other != first


def test_each_hit_of_a_worker_gets_its_own_draw(make_campaign, worker):
    campaign = make_campaign(candidates=60, images_per_hit=10, gold_rate=0.3)
    make_gold("n13873502", 30)
    qualify(worker, campaign)
    layouts = []
    for _ in range(4):
        hit = hit_next(worker=worker, campaign=campaign)
        layouts.append(tuple(hit.items.order_by("position").values_list("is_gold", flat=True)))
        hit.status = "expired"  # the next request leases a new HIT (ordinal + 1)
        hit.save(update_fields=["status"])

    assert len(set(layouts)) > 1  # four equal 10-slot layouts at gold_rate 0.3: odds below 1e-6


def test_quiz_restarted_before_answering_shows_the_same_items_and_a_retry_new_ones(make_campaign, worker, settings):
    campaign = make_campaign(quiz_size=5, quiz_retry_seconds=0)
    make_gold("n13873502", 20, present=True)

    first = quiz_start(worker=worker, campaign=campaign)
    restarted = quiz_start(worker=worker, campaign=campaign)
    quiz_submit(worker=worker, attempt_id=restarted.id, answers={str(i): False for i in restarted.items})
    retry = quiz_start(worker=worker, campaign=campaign)
    retry.delete()  # else the open attempt is what a start returns
    settings.SECRET_KEY = "another secret key for this test"
    other_key = quiz_start(worker=worker, campaign=campaign)

    assert restarted.items == first.items
    assert len(set(first.items)) == 5
    assert retry.items != first.items
    assert other_key.items != retry.items


@pytest.mark.parametrize("bar, boosted", [(0.65, True), (0.0, False)])
def test_a_newcomer_gets_more_gold_until_the_accuracy_bar_clears_them(make_campaign, worker, bar, boosted):
    """screening.hit_gold_rate: NEWCOMER_GOLD_RATE (0.5) in a newcomer's HITs while the campaign's accuracy
    bar has not cleared them (a screen does that when sure), so it judges them on known answers early; the
    campaign's rate (0.1) once cleared, and throughout with no bar."""
    campaign = make_campaign(candidates=120, images_per_hit=20, gold_rate=0.1, min_worker_accuracy=bar)
    make_gold("n13873502", 120)
    qualify(worker, campaign)
    gold = []
    for n in range(6):
        if n == 3:
            screening.newcomer_clear(campaign_id=campaign.id, worker_id=worker.id)
        hit = hit_next(worker=worker, campaign=campaign)
        gold.append(hit.items.filter(is_gold=True).count())
        hit.status = "expired"
        hit.save(update_fields=["status"])

    first, later = sum(gold[:3]), sum(gold[3:])  # of 60 slots each: ~30 boosted, ~6 at the campaign's rate
    assert (first >= 20 and later <= 14) if boosted else (first <= 14 and later <= 14), gold
