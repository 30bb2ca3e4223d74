import random
from collections import Counter

import pytest

from annotation.errors import Forbidden
from annotation.models import Candidate
from annotation.services import screening
from annotation.services.consensus import candidates_update, counters_move
from annotation.services.hits import hit_next, hit_submit
from annotation.services.refit import campaign_refit, worker_unblock
from annotation.tasks import campaign_refit as campaign_refit_task
from tests.annotation.hits.conftest import SHAPES, make_candidates, qualify
from workers.models import Qualification, WorkerProfile
from workers.roles import Role
from workers.services import account_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd_campaign(make_campaign, django_capture_on_commit_callbacks):
    """60 candidates (every third absent), six honest workers at 90% and one always-yes spammer."""
    campaign = make_campaign(wnids=SHAPES[:1], candidates=60, min_votes=3, max_votes=7, confidence=0.95)
    position = {c.id: i for i, c in enumerate(Candidate.objects.order_by("id"))}
    truth = {c: i % 3 != 0 for c, i in position.items()}
    honest = [account_create(username=f"honest{i}", password="pw-honest-1", role=Role.WORKER) for i in range(6)]
    spammer = account_create(username="spammer", password="pw-spammer-1", role=Role.WORKER)
    for w in [*honest, spammer]:
        qualify(w, campaign)
    active = [spammer, *honest]
    hits = dict.fromkeys(active, 0)
    while active:
        for w in list(active):
            try:
                hit = hit_next(worker=w, campaign=campaign)
            except Forbidden:  # blocked by the per-HIT spam screen
                assert w is spammer, f"{w.username} blocked after {hits[w]} HITs"
                active.remove(w)
                continue
            if hit is None:
                active.remove(w)
                continue
            answers = []
            for item in hit.items.order_by("position"):
                # Each worker's answer to each image is fixed by a seed, whatever order the scheduler chose, and
                # whatever ids the database gave (on a shared PostgreSQL test database they depend on earlier tests).
                right = random.Random(f"{w.username}/{position[item.candidate_id]}").random() < 0.9
                says = True if w is spammer else truth[item.candidate_id] == right
                answers.append({"item": item.id, "answer": "present" if says else "absent", "ms": 800})
            with django_capture_on_commit_callbacks(execute=True):
                hit_submit(worker=w, hit_id=hit.id, answers=answers, idempotency_key=f"refit-{hit.id:06d}")
            hits[w] += 1
    campaign.spammer_hits = hits[spammer]
    return campaign, truth, honest, spammer


def states():
    return sorted(Candidate.objects.values_list("id", "state", "posterior"))


def test_the_spam_screen_blocks_the_spammer_and_the_refit_labels_candidates_correctly(crowd_campaign):
    campaign, truth, honest, spammer = crowd_campaign

    summary = campaign_refit(campaign_id=campaign.id)

    # The always-yes worker is blocked by the spam screen — after one of its HITs once enough of its answers
    # fall on confidently labelled images, or at the latest by this refit — and nobody else is.
    assert campaign.spammer_hits <= 4
    assert summary.blocked in ([], [spammer.id])
    reason = WorkerProfile.objects.get(user=spammer).blocked_reason
    assert 'Answers "present" whatever the image' in reason or "independent of the images" in reason, reason
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "blocked"
    assert WorkerProfile.objects.get(user=spammer).blocked is True
    assert not WorkerProfile.objects.filter(user__in=honest, blocked=True).exists()
    # Each honest worker (90% right) is estimated from ~40 answers: sd ~0.05, so one of six under 0.8 now and
    # then is sampling, not a fault (it failed so under load in CI); under 0.7 or a mean under 0.8 would be.
    reliability = list(WorkerProfile.objects.filter(user__in=honest).values_list("reliability", flat=True))
    assert min(reliability) > 0.7 and sum(reliability) / len(reliability) > 0.8, reliability
    accepted = set(Candidate.objects.filter(state="accepted").values_list("id", flat=True))
    rejected = set(Candidate.objects.filter(state="rejected").values_list("id", flat=True))
    assert accepted and rejected
    # Which honest workers see which image depends on the scheduler's shuffles, so allow one slip each way.
    assert sum(not truth[c] for c in accepted) <= 1
    assert sum(truth[c] for c in rejected) <= 1
    campaign.refresh_from_db()
    assert campaign.model_version.startswith("synsight-ds")
    # The counters moved with the states (per HIT, then by the refit), as a recount of the states finds them
    counters = campaign.campaign_synsets.get()
    unresolved = Candidate.objects.filter(state="unresolved").count()
    assert (counters.accepted, counters.rejected, counters.unresolved) == (len(accepted), len(rejected), unresolved)
    assert summary.states == {"accepted": len(accepted), "rejected": len(rejected), "unresolved": unresolved}
    # No candidate is left open with its vote budget spent (the spammer's votes count no more, but were cast):
    # the scheduler would never lease it again.
    assert not Candidate.objects.filter(state__in=["new", "voting"], votes_count__gte=campaign.max_votes).exists()


def test_counters_move_adds_each_synsets_changes_in_one_go(make_campaign):
    campaign = make_campaign(wnids=SHAPES, candidates=1)
    first, second, third = campaign.campaign_synsets.order_by("id")
    counters_move(Counter({(first.id, "accepted"): 2, (second.id, "rejected"): 1, (third.id, "unresolved"): 0}))
    counters_move(Counter({(first.id, "accepted"): -1, (second.id, "rejected"): -1, (second.id, "accepted"): 1,
                           (third.id, "unresolved"): 3}))  # fmt: skip
    rows = campaign.campaign_synsets.order_by("id").values_list("accepted", "rejected", "unresolved")
    assert list(rows) == [(1, 0, 0), (1, 0, 0), (0, 0, 3)]


def test_refit_is_idempotent_and_agrees_with_the_incremental_path(crowd_campaign):
    campaign, _, _, _ = crowd_campaign
    campaign_refit_task.delay(campaign.id)
    first = states()

    campaign_refit(campaign_id=campaign.id)

    assert states() == first
    before = {c: s for c, s, _ in first}
    candidates_update(candidate_ids=list(before))
    after = {c: s for c, s, _ in states()}
    agree = sum(before[c] == after[c] for c in before)
    assert agree >= 0.9 * len(before)  # same votes, same worker parameters: nearly the same decisions


def test_unblocked_worker_counts_again(crowd_campaign):
    campaign, _, _, spammer = crowd_campaign
    campaign_refit(campaign_id=campaign.id)

    worker_unblock(worker_id=spammer.id, campaign=campaign)

    assert WorkerProfile.objects.get(user=spammer).blocked is False
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "qualified"


def test_a_researchers_unblock_stands_until_the_worker_gives_enough_new_answers(
    crowd_campaign, researcher, django_capture_on_commit_callbacks
):
    from annotation.services.manage import worker_unblock as unblock_by_a_person
    from annotation.services.refit import ANSWERS_AFTER_UNBLOCK

    campaign, _, _, spammer = crowd_campaign
    campaign_refit(campaign_id=campaign.id)
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "blocked"
    unblock_by_a_person(worker=spammer, campaign=campaign, reason="appeal upheld", by=researcher)

    # The next refit judges the same answers the researcher looked at: it leaves the worker alone.
    assert campaign_refit(campaign_id=campaign.id).blocked == []
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "qualified"
    assert WorkerProfile.objects.get(user=spammer).blocked is False

    # The worker goes on answering "present" to everything, on new images, HIT after HIT.
    make_candidates(SHAPES[0], ANSWERS_AFTER_UNBLOCK + 20)
    new_answers = 0
    while new_answers < ANSWERS_AFTER_UNBLOCK:
        assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "qualified", new_answers
        assert campaign_refit(campaign_id=campaign.id).blocked == [], new_answers
        hit = hit_next(worker=spammer, campaign=campaign)
        answers = [{"item": i.id, "answer": "present", "ms": 800} for i in hit.items.order_by("position")]
        with django_capture_on_commit_callbacks(execute=True):  # the consensus job and its per-HIT spam screen
            hit_submit(worker=spammer, hit_id=hit.id, answers=answers, idempotency_key=f"after-unblock-{hit.id}")
        new_answers += len(answers)
    assert new_answers == ANSWERS_AFTER_UNBLOCK  # ten per HIT

    # Enough new answers: judged again (by the per-HIT screen or this refit), and blocked.
    summary = campaign_refit(campaign_id=campaign.id)
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "blocked"
    assert summary.blocked in ([], [spammer.id])
    assert WorkerProfile.objects.get(user=spammer).blocked is True


def test_a_researchers_accept_or_reject_override_survives_consensus_and_refit(crowd_campaign, researcher):
    from annotation.models import DecisionOverride

    campaign, _, _, _ = crowd_campaign
    campaign_refit(campaign_id=campaign.id)
    target = Candidate.objects.filter(state="rejected").first()
    DecisionOverride.objects.create(
        campaign=campaign, candidate=target, action="accept", previous_state="rejected", created_by=researcher
    )
    Candidate.objects.filter(id=target.id).update(state="accepted")

    candidates_update(candidate_ids=[target.id])
    campaign_refit(campaign_id=campaign.id)

    assert Candidate.objects.get(id=target.id).state == "accepted"
    DecisionOverride.objects.create(
        campaign=campaign, candidate=target, action="reopen", previous_state="accepted", created_by=researcher
    )
    campaign_refit(campaign_id=campaign.id)
    assert Candidate.objects.get(id=target.id).state == "rejected"  # handed back to the votes


def test_an_established_worker_is_screened_on_every_third_hit_only(crowd_campaign):
    campaign, _, _, spammer = crowd_campaign
    campaign_refit(campaign_id=campaign.id)
    WorkerProfile.objects.filter(user=spammer).update(blocked=False, blocked_reason="")

    def screen_after_hit(hits_done: int) -> str | None:
        WorkerProfile.objects.filter(user=spammer).update(hits_done=hits_done, blocked=False)
        return screening.worker_screen(worker_id=spammer.id, campaign=campaign, own_hits=1)

    assert screen_after_hit(screening.SCREEN_EVERY_HIT_UNTIL) is not None  # every HIT while new
    assert screen_after_hit(screening.SCREEN_EVERY * 4 + 1) is None  # established: skipped between
    assert screen_after_hit(screening.SCREEN_EVERY * 4) is not None  # ... and screened on the cadence
    assert screening.worker_screen(worker_id=spammer.id, campaign=campaign) is None  # blocked by the last one


def test_the_refit_stores_each_synsets_kinds_of_image_and_the_per_hit_update_weighs_votes_by_them(
    crowd_campaign, monkeypatch
):
    from annotation.consensus import item_effect
    from annotation.models import CampaignSynset

    campaign, _, _, _ = crowd_campaign
    campaign_refit(campaign_id=campaign.id)
    policy = CampaignSynset.objects.get(campaign=campaign)
    assert policy.item_kinds is None  # 60 images: too few to tell kinds apart, nothing is claimed
    monkeypatch.setattr(item_effect, "MIN_ITEMS", 30)
    campaign_refit(campaign_id=campaign.id)
    policy.refresh_from_db()
    kinds = policy.item_kinds
    assert kinds["shifts"] == list(item_effect.SHIFTS)
    assert abs(sum(kinds["absent"]) - 1) < 1e-4 and abs(sum(kinds["present"]) - 1) < 1e-4
    accepted = list(Candidate.objects.filter(state="accepted").values_list("id", flat=True))
    assert accepted

    def posteriors(item_kinds):
        CampaignSynset.objects.filter(id=policy.id).update(item_kinds=item_kinds)
        candidates_update(candidate_ids=accepted)
        return dict(Candidate.objects.filter(id__in=accepted).values_list("id", "posterior"))

    plain = posteriors(None)
    neutral = posteriors(
        {"shifts": list(item_effect.SHIFTS), "absent": [0, 0, 1, 0, 0, 0], "present": [0, 0, 1, 0, 0, 0]}
    )
    # Half the synset's negatives look-alikes that fool most workers: a "yes" from several workers proves less.
    look_alikes = posteriors(
        {"shifts": list(item_effect.SHIFTS), "absent": [0, 0, 0.5, 0, 0, 0.5], "present": [0, 0, 1, 0, 0, 0]}
    )
    stale_grid = posteriors({"shifts": [0.0, 1.0], "absent": [0.5, 0.5], "present": [1, 0]})

    assert all(abs(neutral[c] - plain[c]) < 1e-9 for c in accepted)
    assert all(look_alikes[c] < plain[c] for c in accepted)
    assert stale_grid == plain  # shares fitted on another grid are ignored until the next refit
