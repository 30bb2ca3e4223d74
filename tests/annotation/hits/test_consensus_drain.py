"""Coalesced consensus (annotation/services/consensus_queue.py): one drain weighs every HIT submitted since the
last, exactly as per-HIT updates would; a drain that dies or runs twice changes nothing; a drain that finds
another one running leaves the work to it."""

import pytest
from django.core.cache import cache

from annotation.errors import Forbidden
from annotation.models import Campaign, Candidate, Hit, Vote
from annotation.services import consensus_queue, refit, screening
from annotation.services.consensus import candidates_recompute
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import answers_for, make_gold, qualify
from workers.models import WorkerProfile
from workers.roles import Role
from workers.services import account_create

pytestmark = pytest.mark.django_db


def _crowd(n: int) -> list:
    return [account_create(username=f"drainer{i}", password="pw-drainer-1", role=Role.WORKER) for i in range(n)]


def _submit(campaign, workers, answer: str = "present") -> list[int]:
    """One HIT per worker, submitted; after-commit callbacks do not run under the `db` fixture, so no drain
    is requested: the HITs stay pending, as behind a busy Celery worker."""
    hit_ids = []
    for w in workers:
        qualify(w, campaign)
        hit = hit_next(worker=w, campaign=campaign)
        hit_submit(worker=w, hit_id=hit.id, answers=answers_for(hit, answer), idempotency_key=f"drain-{hit.id:06d}")
        hit_ids.append(hit.id)
    return hit_ids


def _stored_matches_recompute() -> bool:
    voted = list(Candidate.objects.filter(votes_count__gt=0).values_list("id", flat=True))
    expected = candidates_recompute(candidate_ids=voted)
    stored = {c.id: c for c in Candidate.objects.filter(id__in=voted)}
    return bool(voted) and all(
        (stored[i].state, stored[i].posterior, stored[i].priority) == (e.state, e.posterior, e.priority)
        for i, e in expected.items()
    )


def test_one_drain_weighs_every_pending_hit_as_a_recomputation_would_and_a_second_finds_nothing(make_campaign):
    # Given four HITs submitted over overlapping candidates, none weighed yet
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    hit_ids = _submit(campaign, _crowd(4))
    assert Hit.objects.filter(id__in=hit_ids, consensus_pending=True).count() == 4
    assert Candidate.objects.filter(priority__lt=0).exists()

    # When one drain runs, then another
    first = consensus_queue.hits_drain()
    second = consensus_queue.hits_drain()

    # Then the first weighed all four HITs and every voted candidate, as a from-scratch evaluation says
    assert (first.hits, first.skipped) == (4, False)
    assert first.candidates == Candidate.objects.filter(votes_count__gt=0).count()
    assert not Hit.objects.filter(consensus_pending=True).exists()
    assert not Candidate.objects.filter(priority__lt=0).exists()
    assert _stored_matches_recompute()
    assert campaign.campaign_synsets.get().accepted == Candidate.objects.filter(state="accepted").count()
    # And the second had nothing to do
    assert (second.hits, second.candidates) == (0, 0)


def test_small_rounds_give_the_same_result_as_one_big_one(make_campaign):
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    _submit(campaign, _crowd(5))

    drained = consensus_queue.hits_drain(batch=2)

    assert drained.hits == 5  # three rounds of at most two HITs
    assert not Hit.objects.filter(consensus_pending=True).exists()
    assert _stored_matches_recompute()


def test_a_drain_that_dies_before_it_is_done_leaves_its_hits_pending_and_the_next_one_does_the_work(
    make_campaign, monkeypatch
):
    # Given pending HITs and a drain that dies after recomputing the candidates, before the screen
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    hit_ids = _submit(campaign, _crowd(3))

    def killed(**_kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(screening, "hits_screen_batch", killed)
    with pytest.raises(SystemExit):
        consensus_queue.hits_drain()

    # Then the HITs are still pending and the lock is released
    assert Hit.objects.filter(id__in=hit_ids, consensus_pending=True).count() == 3
    assert cache.get(consensus_queue.LOCK_KEY) is None

    # And the next drain does it all, with the same result as a single one
    monkeypatch.undo()
    assert consensus_queue.hits_drain().hits == 3
    assert not Hit.objects.filter(consensus_pending=True).exists()
    assert _stored_matches_recompute()


def test_a_drain_that_finds_another_running_leaves_the_work_to_it(make_campaign):
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    hit_ids = _submit(campaign, _crowd(2))
    cache.add(consensus_queue.LOCK_KEY, 1, 60)  # another drain is running

    skipped = consensus_queue.hits_drain()

    assert skipped.skipped and skipped.hits == 0
    assert Hit.objects.filter(id__in=hit_ids, consensus_pending=True).count() == 2
    cache.delete(consensus_queue.LOCK_KEY)
    assert consensus_queue.hits_drain().hits == 2


def test_a_drain_that_outran_its_lock_does_not_release_the_next_drains(make_campaign):
    # Given a drain whose lock expired while it ran (a database stall longer than LOCK_SECONDS), and another
    # drain that took the lock meanwhile
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    _submit(campaign, _crowd(2))

    def lock_expires_and_is_taken(_campaigns) -> None:
        cache.delete(consensus_queue.LOCK_KEY)
        assert cache.add(consensus_queue.LOCK_KEY, 42, 60)

    # When the first one finishes
    assert consensus_queue.hits_drain(after_round=lock_expires_and_is_taken).hits == 2

    # Then the other one's lock is still held: a third drain would not run beside it
    assert cache.get(consensus_queue.LOCK_KEY) == 42
    cache.delete(consensus_queue.LOCK_KEY)


def test_a_lock_is_released_only_with_its_holders_token():
    from config.cache import lock_release, lock_token

    token = lock_token()
    assert cache.add("test:lock", token, 60)
    assert not lock_release("test:lock", token + 1) and cache.get("test:lock") == token
    assert lock_release("test:lock", token) and cache.get("test:lock") is None
    assert not lock_release("test:lock", token)  # nothing to release


def test_a_drain_is_requested_once_until_it_starts(make_campaign, django_capture_on_commit_callbacks):
    # Given a drain already queued (its key set) — with eager Celery a request would run it at once
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    (worker,) = _crowd(1)
    qualify(worker, campaign)
    cache.add(consensus_queue.QUEUED_KEY, 1, 60)
    hit = hit_next(worker=worker, campaign=campaign)

    # When a submit commits, it queues nothing: its HIT waits for the queued drain
    with django_capture_on_commit_callbacks(execute=True):
        hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit), idempotency_key="drain-once-1")
    assert Hit.objects.get(id=hit.id).consensus_pending

    # And once that drain started (the key gone), the next submit queues one, which weighs both HITs
    cache.delete(consensus_queue.QUEUED_KEY)
    hit2 = hit_next(worker=worker, campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        hit_submit(worker=worker, hit_id=hit2.id, answers=answers_for(hit2), idempotency_key="drain-once-2")
    assert not Hit.objects.filter(consensus_pending=True).exists()
    assert _stored_matches_recompute()


def _constant_spammer_behind_a_lagging_drain(make_campaign):
    """Honest workers' HITs weighed, then a constant "present" answerer's first two HITs pending at once."""
    campaign = make_campaign(candidates=60, min_votes=3, max_votes=7, images_per_hit=10, confidence=0.95)
    honest = _crowd(3)
    for _ in range(2):
        _submit(campaign, honest, "absent")
        consensus_queue.hits_drain()
    spammer = account_create(username="constant", password="pw-constant-1", role=Role.WORKER)
    for _ in range(2):
        _submit(campaign, [spammer], "present")
    return campaign, spammer


def test_a_spammer_whose_hits_are_weighed_together_is_screened_and_blocked(make_campaign):
    _, spammer = _constant_spammer_behind_a_lagging_drain(make_campaign)

    # When one drain weighs their two HITs
    drained = consensus_queue.hits_drain()

    # Then the spammer was screened once for the two and blocked
    assert drained.hits == 2
    assert set(drained.blocked) == {spammer.id}
    assert WorkerProfile.objects.get(user=spammer).blocked


def test_a_spammer_ahead_of_a_lagging_drain_is_screened_by_their_next_hit_request(make_campaign):
    campaign, spammer = _constant_spammer_behind_a_lagging_drain(make_campaign)
    assert screening.LAGGING_OWN_HITS == 2

    # When they ask for a third HIT before any drain has run
    with pytest.raises(Forbidden, match=r"You are blocked from this campaign\..*whatever the image"):
        hit_next(worker=spammer, campaign=campaign)

    # Then they are blocked by that request, with no third HIT; their HITs still wait for the drain, which
    # weighs them and does not screen them again
    assert WorkerProfile.objects.get(user=spammer).blocked
    assert Hit.objects.filter(worker=spammer).count() == 2
    assert Hit.objects.filter(worker=spammer, consensus_pending=True).count() == 2
    drained = consensus_queue.hits_drain()
    assert drained.hits == 2 and drained.blocked == {}
    assert not Hit.objects.filter(consensus_pending=True).exists()


def test_an_honest_worker_ahead_of_a_lagging_drain_is_screened_and_gets_the_next_hit(make_campaign, monkeypatch):
    campaign, _ = _constant_spammer_behind_a_lagging_drain(make_campaign)
    careful = account_create(username="careful", password="pw-careful-1", role=Role.WORKER)
    for _ in range(2):
        _submit(campaign, [careful], "absent")  # agrees with the weighed honest majority
    screened = []
    verdict = screening.worker_verdict
    monkeypatch.setattr(screening, "worker_verdict", lambda **kw: screened.append(kw) or verdict(**kw))

    hit = hit_next(worker=careful, campaign=campaign)

    # the speed and bias tests only: the bar's test, slower to decide, is left to the drain
    assert [(kw["worker_id"], kw["quick"]) for kw in screened] == [(careful.id, True)]
    assert hit is not None and hit.worker_id == careful.id
    assert not WorkerProfile.objects.get(user=careful).blocked


@pytest.mark.parametrize(
    ("hits_done", "own_hits", "due"),
    [
        (screening.SCREEN_EVERY_HIT_UNTIL, 1, True),  # every HIT while new
        (screening.SCREEN_EVERY * 5 + 1, 1, False),  # established: between the cadence's HITs
        (screening.SCREEN_EVERY * 5, 1, True),  # ... and on it
        (screening.SCREEN_EVERY * 5 + 2, 2, False),  # two HITs weighed together, neither on the cadence
        (screening.SCREEN_EVERY * 5 + 2, 3, True),  # three, one of them on it
    ],
)
def test_the_screens_cadence_over_several_hits_weighed_together(hits_done, own_hits, due):
    assert screening._due(hits_done, own_hits) is due


def test_the_refit_check_runs_after_every_round_of_a_drain(make_campaign):
    # A busy drain takes many rounds; a refit due after the first must not wait for the last
    campaign = make_campaign(candidates=12, min_votes=3, max_votes=5, images_per_hit=6)
    _submit(campaign, _crowd(5))
    rounds = []

    drained = consensus_queue.hits_drain(batch=2, after_round=rounds.append)

    assert drained.hits == 5
    assert rounds == [{campaign.id}] * 3  # three rounds of at most two HITs


def test_a_refit_remembers_the_real_votes_it_saw_not_the_gold_answers(make_campaign):
    # Given a campaign whose HITs carry gold items: its gold answers are votes too, but not counted per synset
    campaign = make_campaign(candidates=30, min_votes=3, max_votes=5, images_per_hit=6, gold_rate=0.5)
    make_gold("n13873502", 6, present=True)
    _submit(campaign, _crowd(4))
    real, gold = Vote.objects.filter(is_gold=False).count(), Vote.objects.filter(is_gold=True).count()
    assert gold > 0

    refit.campaign_refit(campaign_id=campaign.id)
    campaign.refresh_from_db()

    # Then the next refit is measured against the same count the due check reads (CampaignSynset.votes): with
    # the gold answers included it waited for far more than 10% more real votes
    assert campaign.votes_at_refit == real == sum(campaign.campaign_synsets.values_list("votes", flat=True))
    assert not refit.campaign_refit_due(campaign=campaign)


def test_the_drain_starts_a_refit_only_for_running_campaigns_with_enough_new_votes(make_campaign):
    # Given campaigns with gold (a refit every 48 new votes) and without (every 500): one of each just past
    # its threshold, one just below, one past it but paused
    due = make_campaign(candidates=6, gold_rate=0.1)
    due_no_gold = make_campaign(candidates=6)
    below = make_campaign(candidates=6)
    paused = make_campaign(candidates=6, gold_rate=0.1)
    # and one that refitted at 1,000 votes: then 10% more are needed, not the minimum
    refitted = make_campaign(candidates=6, gold_rate=0.1)
    Campaign.objects.filter(id=refitted.id).update(votes_at_refit=1000)
    Campaign.objects.filter(id=paused.id).update(state=Campaign.State.PAUSED)
    for campaign, votes in (
        (due, refit.REFIT_MIN_NEW_VOTES),
        (due_no_gold, refit.REFIT_MIN_NEW_VOTES_NO_GOLD),
        (below, refit.REFIT_MIN_NEW_VOTES_NO_GOLD - 1),
        (paused, 1000),
        (refitted, 1000 + 99),
    ):
        campaign.campaign_synsets.update(votes=votes)
    ids = {due.id, due_no_gold.id, below.id, paused.id, refitted.id}

    # Then the drain's one-query check lists the two due, as the per-campaign check says
    assert refit.running_campaigns_refit_due(campaign_ids=ids) == sorted([due.id, due_no_gold.id])
    per_campaign = [
        c.id
        for c in Campaign.objects.filter(id__in=ids, state=Campaign.State.RUNNING).order_by("id")
        if refit.campaign_refit_due(campaign=c)
    ]
    assert per_campaign == sorted([due.id, due_no_gold.id])


def test_the_periodic_refit_takes_every_running_campaign_with_any_new_vote(make_campaign, monkeypatch):
    from annotation import tasks

    fresh, quiet, paused = (make_campaign(candidates=6) for _ in range(3))
    fresh.campaign_synsets.update(votes=1)  # one new vote: enough for the periodic refit (every=1)
    paused.campaign_synsets.update(votes=900)
    Campaign.objects.filter(id=paused.id).update(state=Campaign.State.PAUSED)
    queued = []
    monkeypatch.setattr(tasks.campaign_refit, "delay", lambda campaign_id, token: queued.append(campaign_id))

    assert tasks.refit_running_campaigns() == [fresh.id]
    assert queued == [fresh.id] and quiet.id not in queued
    cache.delete(f"refit:{fresh.id}")


def test_a_refit_releases_its_own_lock_only(make_campaign):
    # A refit that outran REFIT_LOCK_SECONDS finds the lock of the refit queued after it: it leaves that one,
    # so a third is not queued beside the second; a refit queued by a policy change (no token) leaves any lock
    from annotation import tasks

    campaign = make_campaign(candidates=6)
    key = f"refit:{campaign.id}"
    assert cache.add(key, 7, 60)

    tasks.campaign_refit(campaign.id, 8)
    tasks.campaign_refit(campaign.id)
    assert cache.get(key) == 7
    tasks.campaign_refit(campaign.id, 7)
    assert cache.get(key) is None
