"""Sixteen workers drawing and verifying at once on the real database: the state machines end where they
must, no worker verifies a box twice or their own, and every counter agrees with the rows."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import F

from annotation.models import Box, BoxAnswer, BoxJob, BoxTaskItem, Candidate
from annotation.selectors.boxes import accepted_boxes
from annotation.services import boxes
from annotation.services.boxes import box_task_next, box_task_submit
from tests.annotation.boxes.conftest import CIRCLE
from tests.annotation.hits.conftest import make_candidates, qualify
from tests.wordnet_snapshot import plane_figures_import
from workers.roles import Role
from workers.services import account_create

WORKERS = 16
IMAGES = 30


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row-lock concurrency is proven on PostgreSQL (CI); SQLite serialises writers instead",
)
def test_concurrent_drawers_and_verifiers_finish_every_image_with_one_box(researcher):
    from annotation.services.campaigns import campaign_create, campaign_set_state

    plane_figures_import()
    campaign = campaign_create(
        owner=researcher, name="c", wnids=[CIRCLE], boxes_enabled=True, gold_rate=0.0, images_per_hit=6
    )
    candidates = make_candidates(CIRCLE, IMAGES)
    Candidate.objects.filter(id__in=[c.id for c in candidates]).update(state=Candidate.State.ACCEPTED)
    campaign = campaign_set_state(campaign=campaign, state="running")
    workers = [account_create(username=f"w{i:02d}", password="pw-crowd-1x", role=Role.WORKER) for i in range(WORKERS)]
    for w in workers:
        qualify(w, campaign)
    boxes.box_jobs_enter(campaign=campaign)
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def crowd_member(worker) -> None:
        try:
            start.wait()
            idle = 0
            serial = 0
            while idle < 3:
                did = False
                for kind in ("quality", "coverage", "draw"):
                    task = box_task_next(worker=worker, campaign=campaign, kind=kind)
                    if task is None:
                        continue
                    did = True
                    items = list(task.items.order_by("position"))
                    shown = accepted_boxes(job_ids=[i.job_id for i in items if i.job_id])
                    answers = []
                    for item in items:
                        if kind == "draw" and shown[item.job_id]:
                            answers.append({"item": item.id, "answer": "no_more", "ms": 1000})
                        elif kind == "draw":
                            answers.append({"item": item.id, "answer": "box", "boxes": [[10, 10, 90, 90]], "ms": 9})
                        else:
                            answers.append({"item": item.id, "answer": "yes", "ms": 500})
                    serial += 1
                    box_task_submit(
                        worker=worker, task_id=task.id, answers=answers, idempotency_key=f"k-{worker.id}-{serial:06d}"
                    )
                idle = 0 if did else idle + 1
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=crowd_member, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert errors == []
    jobs = list(BoxJob.objects.all())
    assert {(j.state, j.draw_pending, j.pending_count) for j in jobs} == {("done", 0, 0)}
    accepted = Counter(Box.objects.filter(state="accepted").values_list("job_id", flat=True))
    assert len(accepted) == IMAGES and set(accepted.values()) == {1}  # one box per image, no duplicates
    assert set(Box.objects.values_list("pending_count", flat=True)) == {0}
    verified = Counter(BoxTaskItem.objects.filter(box__isnull=False).values_list("worker_id", "box_id"))
    assert max(verified.values()) == 1
    assert not BoxTaskItem.objects.filter(box__drawn_by=F("worker")).exists()
    votes = Counter(BoxAnswer.objects.filter(kind="quality").values_list("box_id", flat=True))
    assert all(b.votes_count == votes[b.id] for b in Box.objects.exclude(drawn_by=None))
