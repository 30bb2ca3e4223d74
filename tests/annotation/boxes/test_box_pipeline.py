"""The box pipeline's state machines through the services: draw → quality → coverage, merging, rounds."""

from decimal import Decimal

import pytest

from annotation.errors import Conflict, Gone
from annotation.models import Box, BoxAnswer, BoxJob, BoxTask, Candidate
from annotation.selectors.boxes import box_job_summary
from annotation.services import boxes
from annotation.services.boxes import box_task_next, box_task_submit
from tests.annotation.boxes.conftest import answer_all, key

pytestmark = pytest.mark.django_db


def draw(worker, campaign, coords_by_position=None, answer="box"):
    """Lease a draw task and answer every item: a box (the same or per position) or another answer."""
    task = box_task_next(worker=worker, campaign=campaign, kind="draw")
    answers = []
    for item in task.items.order_by("position"):
        coords = (coords_by_position or {}).get(item.position, [100, 50, 200, 150])
        entry = {"item": item.id, "answer": answer, "ms": 20_000}
        if answer == "box":
            entry["boxes"] = [coords]
        answers.append(entry)
    return task, box_task_submit(worker=worker, task_id=task.id, answers=answers, idempotency_key=key())


def verify(workers, campaign, kind, answer="yes"):
    for worker in workers:
        task = box_task_next(worker=worker, campaign=campaign, kind=kind)
        assert task is not None, f"{worker} got no {kind} task"
        box_task_submit(worker=worker, task_id=task.id, answers=answer_all(task, answer), idempotency_key=key())


def test_only_accepted_candidates_enter_and_entering_twice_changes_nothing(box_campaign):
    assert BoxJob.objects.count() == 3
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"draw"}
    assert boxes.box_jobs_enter(campaign=box_campaign) == 0
    assert BoxJob.objects.count() == 3


def test_a_reopened_candidate_is_withdrawn(box_campaign):
    job = BoxJob.objects.order_by("id").first()
    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.VOTING)
    boxes.box_jobs_enter(campaign=box_campaign)
    job.refresh_from_db()
    assert job.state == "withdrawn"


def test_a_withdrawn_image_accepted_again_goes_back_to_drawing(box_campaign):
    # In the demo a refit reopened an image and consensus accepted it again: the dashboard said "1 no longer
    # accepted" of an accepted image, which never got a box (entering skipped it: it had a job already).
    job = BoxJob.objects.order_by("id").first()
    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.VOTING)
    boxes.box_jobs_enter(campaign=box_campaign)
    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.ACCEPTED)
    assert boxes.box_jobs_enter(campaign=box_campaign) == 0  # no new job: the same one is back
    job.refresh_from_db()
    assert job.state == "draw"
    assert BoxJob.objects.count() == 3 and set(BoxJob.objects.values_list("state", flat=True)) == {"draw"}


def test_a_withdrawn_image_with_a_box_awaiting_checks_goes_back_to_quality(box_campaign, crowd):
    draw(crowd[0], box_campaign)  # every image: a box, waiting for its quality checks
    job = BoxJob.objects.order_by("id").first()
    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.VOTING)
    BoxJob.objects.filter(id=job.id).update(state=BoxJob.State.WITHDRAWN)  # as box_jobs_enter does, no lease out
    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.ACCEPTED)
    boxes.box_jobs_enter(campaign=box_campaign)
    job.refresh_from_db()
    assert job.state == "quality"
    verify(crowd[1:4], box_campaign, "quality")  # its box is checked like the others'
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"coverage"}


def test_draw_verify_cover_takes_an_image_to_done_with_its_box(box_campaign, crowd):
    task, result = draw(crowd[0], box_campaign)
    assert task.items.count() == 3
    assert len(result.boxes) == 3
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"quality"}
    assert list(Box.objects.values_list("x1", "y1", "x2", "y2", "state").distinct()) == [
        (100, 50, 200, 150, "verifying")
    ]

    # The drawer never verifies their own box.
    assert box_task_next(worker=crowd[0], campaign=box_campaign, kind="quality") is None
    verify(crowd[1:3], box_campaign, "quality")
    assert set(Box.objects.values_list("state", flat=True)) == {"verifying"}  # 2 votes at 0.8: p = 0.94
    verify(crowd[3:4], box_campaign, "quality")
    assert set(Box.objects.values_list("state", flat=True)) == {"accepted"}
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"coverage"}

    verify(crowd[1:4], box_campaign, "coverage")
    jobs = BoxJob.objects.all()
    assert {(j.state, j.round, j.votes_count, j.yes_count) for j in jobs} == {("done", 0, 3, 3)}
    assert all(j.posterior > 0.95 for j in jobs)
    assert box_task_next(worker=crowd[4], campaign=box_campaign, kind="coverage") is None


def test_the_summary_counts_the_boxes_of_images_still_accepted(box_campaign, crowd):
    draw(crowd[0], box_campaign)
    verify(crowd[1:4], box_campaign, "quality")
    verify(crowd[1:4], box_campaign, "coverage")
    assert box_job_summary(campaign_id=box_campaign.id)["boxes"] == 3
    job = BoxJob.objects.order_by("id").first()

    Candidate.objects.filter(id=job.candidate_id).update(state=Candidate.State.REJECTED)  # an override, say

    summary = box_job_summary(campaign_id=box_campaign.id)
    assert (summary["boxes"], summary["done"]) == (2, 3)  # the job stays done; its box is no longer counted


def test_nobody_checks_the_coverage_of_an_image_they_drew_a_box_on(box_campaign, crowd):
    # The demo's worker drew a circle's box and was then asked whether every circle of that image is boxed:
    # a verdict on their own drawing (the README: a worker never checks their own boxes).
    draw(crowd[0], box_campaign)
    verify(crowd[1:4], box_campaign, "quality")
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"coverage"}
    assert box_task_next(worker=crowd[0], campaign=box_campaign, kind="coverage") is None
    task = box_task_next(worker=crowd[4], campaign=box_campaign, kind="coverage")
    assert task is not None and task.items.count() == 3


def test_a_rejected_box_sends_the_image_back_to_drawing_for_a_new_round(box_campaign, crowd):
    draw(crowd[0], box_campaign)
    verify(crowd[1:4], box_campaign, "quality", answer="no")
    assert set(Box.objects.values_list("state", flat=True)) == {"rejected"}
    assert {(j.state, j.round, j.draw_pending) for j in BoxJob.objects.all()} == {("draw", 1, 0)}
    # The same worker may draw again in the next round.
    task, _ = draw(crowd[0], box_campaign, answer="no_more")
    assert task.items.count() == 3


def test_not_covered_starts_another_round_and_a_second_box_of_the_same_instance_is_merged(box_campaign, crowd):
    draw(crowd[0], box_campaign, {p: [100, 50, 200, 150] for p in range(3)})
    verify(crowd[1:4], box_campaign, "quality")
    verify(crowd[1:4], box_campaign, "coverage", answer="no")
    assert {(j.state, j.round) for j in BoxJob.objects.all()} == {("draw", 1)}

    # A second drawer boxes the same instance again, slightly differently.
    draw(crowd[4], box_campaign, {p: [104, 52, 206, 150] for p in range(3)})
    verify(crowd[1:4], box_campaign, "quality")
    for job in BoxJob.objects.all():
        accepted = list(job.boxes.filter(state="accepted").values_list("x1", "y1", "x2", "y2", "drawn_by"))
        assert accepted == [(102, 51, 203, 150, None)]  # median of two = midpoint, rounded half up
        merged = job.boxes.get(state="accepted")
        assert sorted(merged.members.values_list("state", "drawn_by__username")) == [
            ("merged", "worker0"),
            ("merged", "worker4"),
        ]
        assert job.state == "coverage"


def test_two_not_present_answers_take_an_image_out(box_campaign, crowd):
    draw(crowd[0], box_campaign, answer="not_present")
    assert {(j.state, j.round, j.absent_count) for j in BoxJob.objects.all()} == {("draw", 1, 1)}
    draw(crowd[1], box_campaign, answer="not_present")
    assert {(j.state, j.absent_count) for j in BoxJob.objects.all()} == {("no_object", 2)}
    assert box_task_next(worker=crowd[2], campaign=box_campaign, kind="draw") is None


def test_rounds_are_bounded(box_campaign, crowd, monkeypatch):
    monkeypatch.setattr(boxes.states, "MAX_ROUNDS", 2)
    draw(crowd[0], box_campaign)
    verify(crowd[1:4], box_campaign, "quality", answer="no")
    draw(crowd[4], box_campaign)
    verify(crowd[1:4], box_campaign, "quality", answer="no")
    assert {(j.state, j.round) for j in BoxJob.objects.all()} == {("unresolved", 2)}


def test_skip_returns_the_image_to_the_queue_without_a_round(box_campaign, crowd):
    draw(crowd[0], box_campaign, answer="skip")
    assert {(j.state, j.round, j.draw_pending) for j in BoxJob.objects.all()} == {("draw", 0, 0)}
    assert box_task_next(worker=crowd[0], campaign=box_campaign, kind="draw") is None  # seen this round
    assert box_task_next(worker=crowd[1], campaign=box_campaign, kind="draw").items.count() == 3


def test_one_draw_lease_per_image_at_a_time_and_expiry_returns_it(box_campaign, crowd):
    first = box_task_next(worker=crowd[0], campaign=box_campaign, kind="draw")
    assert box_task_next(worker=crowd[1], campaign=box_campaign, kind="draw") is None
    assert box_task_next(worker=crowd[0], campaign=box_campaign, kind="draw").id == first.id  # the open one
    BoxTask.objects.filter(id=first.id).update(expires_at="2000-01-01T00:00Z")
    assert boxes.box_tasks_expire() == 1
    assert set(BoxJob.objects.values_list("draw_pending", flat=True)) == {0}
    with pytest.raises(Gone):
        box_task_submit(worker=crowd[0], task_id=first.id, answers=[], idempotency_key=key())
    assert box_task_next(worker=crowd[1], campaign=box_campaign, kind="draw").items.count() == 3


def test_a_retry_with_the_same_key_stores_nothing_more_and_a_new_key_is_refused(box_campaign, crowd):
    task = box_task_next(worker=crowd[0], campaign=box_campaign, kind="draw")
    answers = [{"item": i.id, "answer": "box", "boxes": [[1, 2, 30, 40]], "ms": 5} for i in task.items.all()]
    first = box_task_submit(worker=crowd[0], task_id=task.id, answers=answers, idempotency_key="same-key-1")
    again = box_task_submit(worker=crowd[0], task_id=task.id, answers=answers, idempotency_key="same-key-1")
    assert again.replayed and again.boxes == first.boxes
    assert Box.objects.count() == 3 and BoxAnswer.objects.count() == 3
    with pytest.raises(Conflict):
        box_task_submit(worker=crowd[0], task_id=task.id, answers=answers, idempotency_key="other-key-2")


def test_gold_boxes_mix_into_quality_tasks_and_score_the_worker(box_campaign, crowd):
    from workers.models import WorkerProfile

    box_campaign.gold_rate = 0.5
    box_campaign.save()
    spare = Candidate.objects.exclude(state="accepted").get()
    good = boxes.box_gold_create(candidate=spare, box=[10, 10, 100, 100], good=True)
    draw(crowd[0], box_campaign)
    seen_gold = False
    for _ in range(20):  # gold slots are random; the gold box is offered until the worker has seen it
        task = box_task_next(worker=crowd[1], campaign=box_campaign, kind="quality")
        if task is None:
            break
        seen_gold |= task.items.filter(box=good, is_gold=True).exists()
        box_task_submit(worker=crowd[1], task_id=task.id, answers=answer_all(task, "yes"), idempotency_key=key())
    profile = WorkerProfile.objects.get(user=crowd[1])
    assert (profile.gold_answered, profile.gold_correct) == ((1, 1) if seen_gold else (0, 0))
    good.refresh_from_db()
    assert (good.state, good.votes_count, good.job_id) == ("drawn", 0, None)


def test_box_tasks_count_in_what_the_campaign_spent_and_in_the_workers_pay(box_campaign, crowd):
    # The demo paid 1.00 for ten box tasks (ledger 9.30) while its dashboard said it had spent 8.30: box work
    # was paid but neither in "spent", nor in the cost per accepted image, nor in anyone's hourly pay.
    from django.db.models import Sum

    from annotation.selectors import dashboard
    from annotation.services.refit import campaign_counters_recount
    from workers.models import LedgerEntry

    campaign_counters_recount(campaign=box_campaign)  # the fixture accepted 3 candidates behind the counters
    draw(crowd[0], box_campaign)  # 3 items, 20 s each
    verify(crowd[1:3], box_campaign, "quality")  # 3 items, 0.7 s each
    paid = LedgerEntry.objects.aggregate(total=Sum("amount"))["total"]
    assert paid == Decimal("0.30")
    cost = dashboard.cost(campaign=box_campaign)
    assert (cost["spent"], cost["accepted"], cost["cost_per_accepted"]) == ("0.30", 3, "0.10")
    drawer = next(w for w in cost["workers"] if w["username"] == "worker0")
    assert (drawer["hits"], drawer["earned"], drawer["hours"]) == (0, "0.10", round(60_000 / 3_600_000, 4))
    assert drawer["hourly_pay"] == "6.00"  # 0.10 for a minute's drawing
    summary = dashboard.summary(campaign=box_campaign)
    assert (summary["spent"], summary["hits"], summary["workers"]) == ("0.30", 0, 3)
