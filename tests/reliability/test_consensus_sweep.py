"""The periodic consensus sweep: votes whose consensus update never ran are weighed later, once, with the
same result as the update would have given. Under pytest-django's `db` fixture on_commit callbacks never
run, so a submit here is exactly a submit whose queued update was lost."""

from django.db import transaction

from annotation import tasks
from annotation.models import Candidate, DecisionOverride, Hit, Vote
from annotation.services.campaigns import campaign_set_state
from annotation.services.consensus import candidates_recompute
from annotation.services.hits import hit_next, hit_submit
from annotation.services.manage import candidate_override
from tests.annotation.hits.conftest import qualify
from tests.reliability.conftest import account_create_fast, shapes_campaign


def _submit_all(campaign, workers) -> None:
    for worker in workers:
        qualify(worker, campaign)
        hit = hit_next(worker=worker, campaign=campaign)
        answers = [{"item": item.id, "answer": "present", "ms": 800} for item in hit.items.order_by("position")]
        hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key=f"key-{hit.id:08d}")


def test_the_sweep_weighs_votes_whose_consensus_update_never_ran_and_only_once(db):
    # Given two HITs submitted whose consensus updates never ran
    campaign = shapes_campaign(per_synset=2, images_per_hit=2, min_votes=2, max_votes=3)
    _submit_all(campaign, [account_create_fast("w1"), account_create_fast("w2")])
    voted = list(Candidate.objects.filter(votes_count__gt=0).order_by("id"))
    assert len(voted) in (2, 4)  # the two HITs hold the same two candidates or four different ones
    assert [(c.priority < 0, c.model_version, c.posterior) for c in voted] == [(True, "", None)] * len(voted)

    # When the periodic sweep runs (twice)
    swept = tasks.consensus_sweep()
    again = tasks.consensus_sweep()

    # Then it recomputed those candidates, as a from-scratch evaluation says, and nothing the second time
    assert (swept, again) == (len(voted), 0)
    expected = candidates_recompute(candidate_ids=[c.id for c in voted])
    stored = Candidate.objects.filter(id__in=expected).order_by("id")
    assert [(c.state, c.posterior, c.priority) for c in stored] == [
        (e.state, e.posterior, e.priority) for _, e in sorted(expected.items())
    ]
    assert all(c.priority >= 0 and c.model_version for c in stored)


def test_the_sweep_leaves_a_researchers_decision_alone_and_stops_coming_back_to_it(db):
    # Given a candidate a researcher accepted while a worker held it, whose vote then awaits consensus
    campaign = shapes_campaign(per_synset=1, images_per_hit=1, min_votes=2, max_votes=3)
    worker = account_create_fast("w1")
    qualify(worker, campaign)
    hit = hit_next(worker=worker, campaign=campaign)
    candidate = hit.items.get().candidate
    candidate_override(campaign=campaign, candidate_id=candidate.id, action=DecisionOverride.Action.ACCEPT)
    answers = [{"item": hit.items.get().id, "answer": "absent", "ms": 800}]
    hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key="key-override")
    candidate.refresh_from_db()
    assert (candidate.state, candidate.priority < 0) == (Candidate.State.ACCEPTED, True)

    # When the sweep runs twice
    swept, again = tasks.consensus_sweep(), tasks.consensus_sweep()

    # Then the decision stands, the mark is cleared, and the second sweep finds nothing
    candidate.refresh_from_db()
    assert (swept, again) == (1, 0)
    assert (candidate.state, candidate.priority) == (Candidate.State.ACCEPTED, 0.0)


def _finish(campaign) -> None:
    with transaction.atomic():
        campaign_set_state(campaign=campaign, state="finished")


def test_votes_whose_consensus_update_was_lost_are_weighed_when_the_campaign_finishes(db):
    # Given two HITs submitted whose consensus updates never ran (a Celery worker killed mid-drain, say)
    campaign = shapes_campaign(per_synset=2, images_per_hit=2, min_votes=2, max_votes=3)
    _submit_all(campaign, [account_create_fast("w1"), account_create_fast("w2")])
    voted = [c.id for c in Candidate.objects.filter(votes_count__gt=0).order_by("id")]
    expected = candidates_recompute(candidate_ids=voted)
    assert len(expected) == len(voted) > 0

    # When the researcher finishes the campaign before any drain or sweep ran, and then they run
    _finish(campaign)
    tasks.consensus_drain()
    tasks.consensus_sweep()

    # Then the finished campaign's decisions hold those votes, and no candidate still awaits consensus
    stored = Candidate.objects.filter(id__in=voted).order_by("id")
    assert [(c.state, c.posterior, c.priority) for c in stored] == [
        (e.state, e.posterior, e.priority) for _, e in sorted(expected.items())
    ]
    assert Candidate.objects.filter(priority__lt=0).count() == 0
    assert Hit.objects.filter(consensus_pending=True).count() == 0


def test_a_hit_submitted_after_its_campaign_finished_leaves_no_candidate_awaiting_consensus_for_ever(db):
    # Given a worker holding a leased HIT when the researcher finishes the campaign
    campaign = shapes_campaign(per_synset=2, images_per_hit=2, min_votes=2, max_votes=3)
    worker = account_create_fast("w1")
    qualify(worker, campaign)
    hit = hit_next(worker=worker, campaign=campaign)
    _finish(campaign)

    # When the worker submits it (the lease still runs) and the drain and the sweep run, twice
    answers = [{"item": item.id, "answer": "present", "ms": 800} for item in hit.items.order_by("position")]
    hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key="key-after-finish")
    for _ in range(2):
        tasks.consensus_drain()
        tasks.consensus_sweep()

    # Then the votes are stored, and no candidate keeps the "awaiting consensus" mark that nothing clears
    assert Vote.objects.filter(hit=hit).count() == 2
    assert Hit.objects.filter(consensus_pending=True).count() == 0
    assert list(Candidate.objects.filter(priority__lt=0).values_list("id", flat=True)) == []
