from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Gone, NotFound
from annotation.models import Candidate, Hit, Vote
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import answers_for, qualify
from workers.models import LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_hit(make_campaign, worker):
    campaign = make_campaign(candidates=10, min_votes=3, max_votes=5, confidence=0.99)
    qualify(worker, campaign)
    return hit_next(worker=worker, campaign=campaign)


def snapshot():
    return (
        Vote.objects.count(),
        LedgerEntry.objects.count(),
        sorted(Candidate.objects.values_list("id", "votes_count", "yes_count", "pending_count")),
        sorted(Hit.objects.values_list("id", "status")),
    )


def test_submit_records_votes_counters_profile_and_earnings(open_hit, worker):
    answers = answers_for(open_hit, "present", ms=1200)
    answers[0]["answer"] = "absent"
    answers[1]["answer"] = "cant_tell"

    result = hit_submit(worker=worker, hit_id=open_hit.id, answers=answers, idempotency_key="first-key")

    assert (result.answers, result.earned, result.replayed) == (10, "0.10", False)
    assert Vote.objects.filter(hit=open_hit).count() == 10
    assert sorted(Vote.objects.values_list("answer", flat=True)) == [0] + [1] * 8 + [2]
    assert set(Vote.objects.values_list("response_ms", flat=True)) == {1200}
    assert Candidate.objects.filter(votes_count=1, yes_count=1, pending_count=0).count() == 8
    assert Candidate.objects.filter(votes_count=1, yes_count=0).count() == 1
    assert Candidate.objects.filter(votes_count=0, pending_count=0).count() == 1  # can't tell: lease returned
    profile = worker.worker_profile
    assert (profile.hits_done, profile.answers, profile.answer_ms_total) == (1, 10, 12_000)
    assert LedgerEntry.objects.get(worker=worker).amount == open_hit.campaign.reward_per_hit
    assert Hit.objects.get(id=open_hit.id).status == "submitted"


def test_retry_with_the_same_key_returns_the_first_result_and_writes_nothing(open_hit, worker):
    first = hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="same-key-1")
    before = snapshot()

    again = hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="same-key-1")

    assert (again.hit_id, again.answers, again.earned, again.replayed) == (first.hit_id, 10, "0.10", True)
    assert snapshot() == before


def test_second_submit_with_a_new_key_is_refused(open_hit, worker):
    hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="key-one-1")
    before = snapshot()

    with pytest.raises(Conflict, match="already submitted"):
        hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="key-two-2")
    assert snapshot() == before


def test_foreign_hit_is_not_found(open_hit, other_worker):
    before = snapshot()

    with pytest.raises(NotFound, match=f"You have no HIT {open_hit.id}"):
        hit_submit(worker=other_worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="thief-key")
    assert snapshot() == before


def test_expired_lease_is_gone(open_hit, worker):
    Hit.objects.filter(id=open_hit.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = snapshot()

    with pytest.raises(Gone, match="expired"):
        hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="late-key-1")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a[:-1], "1 item of HIT"),
        (lambda a: [*a, {"item": 999_999, "answer": "present", "ms": 1}], "is not part of HIT"),
        (lambda a: [*a, a[0]], "answered twice"),
        (lambda a: [{**a[0], "answer": "yes"}, *a[1:]], "answer must be one of absent, present, cant_tell"),
        # Unhashable values: a dictionary lookup raised TypeError, a 500 (QA).
        (lambda a: [{**a[0], "answer": ["present"]}, *a[1:]], "answer must be one of absent, present, cant_tell"),
        (lambda a: [{**a[0], "answer": {"present": True}}, *a[1:]], "answer must be one of absent, present, cant_tell"),
        (lambda a: [{**a[0], "item": str(a[0]["item"])}, *a[1:]], "item must be an integer"),
        # A huge value is quoted cut short, not sent back whole (QA).
        (lambda a: [{**a[0], "answer": "y" * 100_000}, *a[1:]], "; got '" + "y" * 38 + "…\\.$"),
        (lambda a: [{**a[0], "ms": -5}, *a[1:]], "ms must be a whole number"),
        (lambda a: [{**a[0], "ms": 1.5}, *a[1:]], "ms must be a whole number"),
        (lambda a: "present", "answers must be a list"),
        (lambda a: [1, *a[1:]], "Each answer must be an object"),
    ],
)
def test_malformed_answers_are_refused_and_change_nothing(open_hit, worker, mutate, message):
    before = snapshot()

    with pytest.raises(AnnotationError, match=message):
        hit_submit(
            worker=worker, hit_id=open_hit.id, answers=mutate(answers_for(open_hit)), idempotency_key="bad-key-1"
        )
    assert snapshot() == before


def test_idempotency_key_must_be_given(open_hit, worker):
    with pytest.raises(AnnotationError, match="idempotency_key"):
        hit_submit(worker=worker, hit_id=open_hit.id, answers=answers_for(open_hit), idempotency_key="")


def test_consensus_accepts_candidates_once_the_votes_agree(
    make_campaign, worker, other_worker, researcher, django_capture_on_commit_callbacks
):
    campaign = make_campaign(candidates=4, min_votes=3, max_votes=6, confidence=0.98, images_per_hit=4)
    workers = [worker, other_worker, researcher]
    for w in workers:
        qualify(w, campaign)

    for i, w in enumerate(workers):
        hit = hit_next(worker=w, campaign=campaign)
        with django_capture_on_commit_callbacks(execute=True):
            hit_submit(worker=w, hit_id=hit.id, answers=answers_for(hit, "present"), idempotency_key=f"agree-{i:04d}")

    states = set(Candidate.objects.values_list("state", flat=True))
    assert states == {"accepted"}  # three "present" votes at 0.8 accuracy: odds 64:1 → 0.985 ≥ 0.98
    assert all(p > 0.98 for p in Candidate.objects.values_list("posterior", flat=True))
    assert campaign.campaign_synsets.get().accepted == 4


def test_a_retry_with_the_same_key_but_other_answers_is_refused_and_the_first_answers_stand(open_hit, worker):
    answers = answers_for(open_hit)
    answers[-1] = {**answers[-1], "answer": "cant_tell"}
    hit_submit(worker=worker, hit_id=open_hit.id, answers=answers, idempotency_key="same-key-2")
    before = snapshot()
    # the same answers with other response times are the same submission
    same = hit_submit(
        worker=worker, hit_id=open_hit.id, answers=[{**a, "ms": a["ms"] + 1} for a in answers],
        idempotency_key="same-key-2",
    )  # fmt: skip
    changed = [{**answers[0], "answer": "absent"}, *answers[1:]]

    with pytest.raises(Conflict, match=r"already submitted HIT \d+ with other answers; those were recorded and stand"):
        hit_submit(worker=worker, hit_id=open_hit.id, answers=changed, idempotency_key="same-key-2")
    with pytest.raises(Conflict, match="with other answers"):
        hit_submit(worker=worker, hit_id=open_hit.id, answers=answers[:-1], idempotency_key="same-key-2")

    assert same.replayed
    assert snapshot() == before
