from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.errors import Conflict, Forbidden, NotFound
from annotation.models import Campaign, Candidate, Hit, HitItem
from annotation.services.hits import hit_next, hit_release, hit_submit, hits_expire
from annotation.services.leases import RELEASE_GRACE_SECONDS
from tests.annotation.hits.conftest import SHAPES, answers_for, make_gold, qualify

pytestmark = pytest.mark.django_db


def leased_ids(hit) -> set[int]:
    return set(hit.items.values_list("candidate_id", flat=True))


def test_hit_has_one_synset_and_the_campaign_size(make_campaign, worker):
    campaign = make_campaign(wnids=SHAPES, candidates=15)
    qualify(worker, campaign)

    hit = hit_next(worker=worker, campaign=campaign)

    assert hit.items.count() == 10
    assert set(Candidate.objects.filter(id__in=leased_ids(hit)).values_list("synset_id", flat=True)) == {hit.synset_id}
    assert Candidate.objects.filter(id__in=leased_ids(hit), state="voting", pending_count=1).count() == 10


def test_asking_again_returns_the_open_hit(make_campaign, worker):
    campaign = make_campaign()
    qualify(worker, campaign)

    first = hit_next(worker=worker, campaign=campaign)
    second = hit_next(worker=worker, campaign=campaign)

    assert first.id == second.id
    assert second.expires_at == first.expires_at  # a lease never given back is left as it is
    assert Hit.objects.filter(worker=worker).count() == 1


def test_worker_never_receives_the_same_candidate_twice(make_campaign, worker):
    campaign = make_campaign(candidates=25, min_votes=3, max_votes=5)
    qualify(worker, campaign)
    seen: list[int] = []

    while (hit := hit_next(worker=worker, campaign=campaign)) is not None:
        seen.extend(leased_ids(hit))
        hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit), idempotency_key=f"key-{hit.id:08d}")

    assert len(seen) == 25
    assert len(set(seen)) == 25


def test_candidates_are_not_handed_out_beyond_the_votes_they_need(make_campaign, worker, other_worker, researcher):
    campaign = make_campaign(candidates=5, min_votes=2)
    for w in (worker, other_worker, researcher):
        qualify(w, campaign)

    first = hit_next(worker=worker, campaign=campaign)
    second = hit_next(worker=other_worker, campaign=campaign)
    third = hit_next(worker=researcher, campaign=campaign)

    assert first.items.count() == second.items.count() == 5
    assert third is None  # both votes each candidate needs are already leased
    assert set(Candidate.objects.values_list("pending_count", flat=True)) == {2}


def test_expired_lease_returns_items_to_the_queue(make_campaign, worker, other_worker, researcher):
    campaign = make_campaign(candidates=5, min_votes=2)
    for w in (worker, other_worker, researcher):
        qualify(w, campaign)
    stale = hit_next(worker=worker, campaign=campaign)
    hit_next(worker=other_worker, campaign=campaign)
    Hit.objects.filter(id=stale.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    third = hit_next(worker=researcher, campaign=campaign)

    assert Hit.objects.get(id=stale.id).status == "expired"
    assert leased_ids(third) == leased_ids(stale)
    assert set(Candidate.objects.values_list("pending_count", flat=True)) == {2}
    assert hits_expire() == 0  # nothing left to expire, nothing released twice


def test_worker_whose_lease_expired_gets_new_candidates_not_the_old_ones(make_campaign, worker):
    campaign = make_campaign(candidates=20)
    qualify(worker, campaign)
    stale = hit_next(worker=worker, campaign=campaign)
    Hit.objects.filter(id=stale.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    fresh = hit_next(worker=worker, campaign=campaign)

    assert fresh.id != stale.id
    assert leased_ids(fresh).isdisjoint(leased_ids(stale))


def test_a_released_hit_goes_back_to_the_queue_after_the_grace(make_campaign, worker, other_worker):
    campaign = make_campaign(candidates=5, min_votes=1)
    qualify(worker, campaign)
    qualify(other_worker, campaign)
    closed = hit_next(worker=worker, campaign=campaign)

    assert hit_release(worker=worker, hit_id=closed.id) is True
    expires_at = Hit.objects.get(id=closed.id).expires_at
    assert expires_at <= timezone.now() + timedelta(seconds=RELEASE_GRACE_SECONDS)
    assert hit_next(worker=other_worker, campaign=campaign) is None  # still the worker's during the grace
    Hit.objects.filter(id=closed.id).update(expires_at=timezone.now() - timedelta(seconds=1))  # the grace ran out

    taken = hit_next(worker=other_worker, campaign=campaign)

    assert leased_ids(taken) == leased_ids(closed)
    assert Hit.objects.get(id=closed.id).status == "expired"


def test_asking_again_within_the_grace_restores_the_whole_lease(make_campaign, worker):
    campaign = make_campaign(lease_seconds=900)
    qualify(worker, campaign)
    hit = hit_next(worker=worker, campaign=campaign)
    hit_release(worker=worker, hit_id=hit.id)  # the page reloads: its goodbye, then its next-HIT request

    again = hit_next(worker=worker, campaign=campaign)

    assert again.id == hit.id
    assert again.expires_at == hit.created + timedelta(seconds=900)  # counted from the HIT's creation
    assert Hit.objects.get(id=hit.id).expires_at == again.expires_at


def test_releasing_is_a_no_op_for_a_submitted_hit_and_refused_for_someone_elses(make_campaign, worker, other_worker):
    campaign = make_campaign()
    qualify(worker, campaign)
    hit = hit_next(worker=worker, campaign=campaign)
    hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit), idempotency_key="release-key-1")

    assert hit_release(worker=worker, hit_id=hit.id) is False  # the goodbye arrived after the submit
    assert Hit.objects.get(id=hit.id).status == "submitted"
    with pytest.raises(NotFound):
        hit_release(worker=other_worker, hit_id=hit.id)


def test_gold_is_mixed_in_at_the_rate_and_never_counted_as_a_vote(make_campaign, worker):
    campaign = make_campaign(candidates=40, gold_rate=0.5, images_per_hit=20)
    gold = make_gold(SHAPES[0], 30, present=True)
    qualify(worker, campaign)

    hit = hit_next(worker=worker, campaign=campaign)
    gold_items = HitItem.objects.filter(hit=hit, is_gold=True)
    hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit, "present"), idempotency_key="gold-key-1")

    assert hit.items.count() == 20
    assert 2 <= gold_items.count() <= 18  # binomial(20, 0.5): bounds hold with overwhelming probability
    gold_candidates = {g.candidate_id for g in gold}
    assert set(gold_items.values_list("candidate_id", flat=True)) <= gold_candidates
    assert Candidate.objects.filter(id__in=gold_candidates, votes_count__gt=0).count() == 0
    profile = worker.worker_profile
    assert profile.gold_answered == gold_items.count()
    assert profile.gold_correct == gold_items.count()


def test_unqualified_and_blocked_workers_and_idle_campaigns_get_no_work(make_campaign, worker):
    campaign = make_campaign()

    with pytest.raises(Forbidden, match="qualification quiz"):
        hit_next(worker=worker, campaign=campaign)
    qualify(worker, campaign)
    worker.qualifications.update(status="blocked")
    with pytest.raises(Forbidden, match="blocked"):
        hit_next(worker=worker, campaign=campaign)
    paused = make_campaign(running=False)
    with pytest.raises(Conflict, match="is draft, not running"):
        hit_next(worker=worker, campaign=paused)
    assert Hit.objects.count() == 0


def test_a_blocked_worker_is_told_why_and_who_can_unblock_them(make_campaign, worker, client):
    from annotation.services.refit import worker_block

    campaign = make_campaign()
    qualify(worker, campaign)
    worker_block(worker_id=worker.id, campaign=campaign, reason="Answers faster than a person can look (median 40 ms).")
    expected = (
        "You are blocked from this campaign. The reason recorded: Answers faster than a person can look (median 40 "
        "ms). A researcher of the campaign can unblock you."
    )
    with pytest.raises(Forbidden) as refused:
        hit_next(worker=worker, campaign=campaign)
    assert str(refused.value) == expected
    client.force_login(worker)
    response = client.post(f"/api/v1/campaigns/{campaign.id}/quiz/")
    assert response.status_code == 403 and response.json()["detail"] == expected
    assert client.get("/api/v1/me/").json()["blocked_reason"].startswith("Answers faster than a person can look")
    home = client.get("/work/").content.decode()
    assert "blocked" in home and "median 40 ms" in home and "can unblock you" in home


def test_each_campaign_gives_its_own_block_reason_and_an_unblock_keeps_the_others(make_campaign, worker, client):
    from annotation.selectors.dashboard import quality
    from annotation.services.refit import worker_block, worker_unblock

    first, second = make_campaign(wnids=SHAPES[:1]), make_campaign(wnids=SHAPES[1:2])
    for campaign in (first, second):
        qualify(worker, campaign)
    worker_block(worker_id=worker.id, campaign=first, reason="Answers in 40 ms.")
    worker_block(worker_id=worker.id, campaign=second, reason="Says present to everything.")
    for campaign, reason in ((first, "Answers in 40 ms"), (second, "Says present to everything")):
        with pytest.raises(Forbidden, match=f"The reason recorded: {reason}\\."):
            hit_next(worker=worker, campaign=campaign)
        assert [b["reason"] for b in quality(campaign=campaign)["blocked"]] == [f"{reason}."]
    client.force_login(worker)
    reasons = {q["campaign"]: q["blocked_reason"] for q in client.get("/api/v1/me/").json()["qualifications"]}
    assert reasons == {first.id: "Answers in 40 ms.", second.id: "Says present to everything."}

    # Unblocked in the second campaign, still blocked in the first: the profile's "blocked somewhere" (which
    # silences their votes in consensus) stays, with the first block's reason.
    worker_unblock(worker_id=worker.id, campaign=second)
    assert hit_next(worker=worker, campaign=second) is not None
    worker.worker_profile.refresh_from_db()
    assert (worker.worker_profile.blocked, worker.worker_profile.blocked_reason) == (True, "Answers in 40 ms.")
    worker_unblock(worker_id=worker.id, campaign=first)
    worker.worker_profile.refresh_from_db()
    assert (worker.worker_profile.blocked, worker.worker_profile.blocked_reason) == (False, "")


def test_every_hit_keeps_a_real_candidate_however_much_gold_is_drawn(make_campaign, worker, other_worker):
    # A newcomer gets gold at 0.5 per slot: on a small HIT every slot came up gold now and then, which left
    # nothing to lease (PostgreSQL: a 500 from compiling LIMIT 0; SQLite: "no more images" with work left).
    campaign = make_campaign(images_per_hit=3, gold_rate=0.1)
    make_gold(SHAPES[0], 12)
    Campaign.objects.filter(id=campaign.id).update(gold_rate=1.0)  # every slot drawn as gold
    campaign.refresh_from_db()
    for member in (worker, other_worker):
        qualify(member, campaign)
        hit = hit_next(worker=member, campaign=campaign)
        assert hit is not None
        assert (hit.items.filter(is_gold=True).count(), hit.items.filter(is_gold=False).count()) == (2, 1)


def test_a_synset_that_has_reached_its_target_gets_no_more_hits(make_campaign, worker, other_worker):
    from annotation.services import hits, refit
    from tests.annotation.hits.test_work_home import accept

    campaign = make_campaign(wnids=SHAPES[:2], candidates=6, target_per_synset=2, images_per_hit=2)
    for member in (worker, other_worker):
        qualify(member, campaign)
    accept(SHAPES[0], 2)  # the first synset is done, the second has nothing accepted yet
    refit.campaign_counters_recount(campaign=campaign)
    hits._need_cache.clear()  # the scheduler reads accepted counts at most every 2 s per process
    hit = hit_next(worker=worker, campaign=campaign)
    assert hit.synset_id == int(SHAPES[1][1:])
    hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit), idempotency_key="k-target-1")

    accept(SHAPES[1], 2)  # now both are: no more HITs, although candidates are still open
    refit.campaign_counters_recount(campaign=campaign)
    hits._need_cache.clear()
    assert Candidate.objects.filter(state__in=["new", "voting"]).count() > 0
    assert hit_next(worker=other_worker, campaign=campaign) is None
    Campaign.objects.filter(id=campaign.id).update(target_per_synset=3)  # raising the target resumes the work
    campaign.refresh_from_db()
    assert hit_next(worker=other_worker, campaign=campaign) is not None


def test_when_only_candidates_awaiting_consensus_are_left_the_request_weighs_them_and_leases_the_undecided(
    make_campaign, worker, other_worker, researcher
):
    # Two workers voted on all six candidates; consensus has not weighed those votes (in these tests the drain
    # asked for on commit never runs: as with a lagging Celery worker, every candidate awaits it).
    campaign = make_campaign(candidates=6, min_votes=2, max_votes=8, images_per_hit=6)
    for member in (worker, other_worker, researcher):
        qualify(member, campaign)
    ids = sorted(Candidate.objects.values_list("id", flat=True))
    for member, answers in ((other_worker, ["present"] * 6), (researcher, ["absent"] * 3 + ["present"] * 3)):
        hit = hit_next(worker=member, campaign=campaign)
        by_candidate = dict(hit.items.values_list("candidate_id", "id"))
        given = [{"item": by_candidate[c], "answer": a, "ms": 900} for c, a in zip(ids, answers, strict=True)]
        hit_submit(worker=member, hit_id=hit.id, answers=given, idempotency_key=f"await-{member.id:04d}")
    assert Candidate.objects.filter(priority__lt=0).count() == 6

    hit = hit_next(worker=worker, campaign=campaign)

    # Not "no work": the request weighed them, and the HIT holds exactly those still undecided.
    weighed = dict(Candidate.objects.values_list("id", "state"))
    assert not Candidate.objects.filter(priority__lt=0).exists()
    assert hit is not None
    assert leased_ids(hit) == {c for c, state in weighed.items() if state == "voting"}
    assert set(ids[:3]) <= leased_ids(hit)  # one yes, one no: undecided


def test_the_synsets_that_have_images_are_tried_first_in_a_campaign_where_most_have_none(make_campaign, monkeypatch):
    # A campaign of many synsets, nothing accepted anywhere, images so far in one synset only. Each request tries
    # SYNSETS_TRIED of the furthest behind (2 of 8 here; 25 of 2,958 where QA found it): drawn among all, most
    # requests missed the one with images and told the worker there was no work.
    from annotation.services import hits
    from tests.annotation.hits.conftest import make_candidates
    from workers.roles import Role
    from workers.services import account_create

    monkeypatch.setattr(hits, "SYNSETS_TRIED", 2)
    campaign = make_campaign(wnids=SHAPES, candidates=0, images_per_hit=2)
    make_candidates(SHAPES[-1], 20)
    hits._need_cache.clear()
    hits._open_cache.clear()
    workers = [account_create(username=f"w{i}", password="pw-worker-123", role=Role.WORKER) for i in range(6)]
    for member in workers:
        qualify(member, campaign)

    leased = [hit_next(worker=member, campaign=campaign) for member in workers]

    assert all(hit is not None and hit.synset_id == int(SHAPES[-1][1:]) for hit in leased)
