"""The image (BoxJob) and box state machines: quality votes decide a box (accepted boxes of one instance
are merged), coverage votes decide an image, rounds are bounded (boxes.md beside this package)."""

from __future__ import annotations

import math

import numpy as np
from django.db.models import Q

from annotation.boxes import aggregate_boxes, iou_matrix, small_object_threshold
from annotation.consensus import item_posteriors, item_states
from annotation.consensus.stopping import ItemState
from annotation.models import Box, BoxAnswer, BoxJob
from annotation.services.consensus import DEFAULT_ACCURACY, _worker_confusions
from workers.models import WorkerProfile

from .policy import CONFIDENCE, MAX_BOXES_PER_IMAGE, MAX_ROUNDS, MAX_VOTES, MERGE_IOU, MIN_VOTES, PRIOR_YES, A, Kind

# ----------------------------------------------------------------------------------- state machines


def _posteriors(votes: list[tuple[int, int, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """P(yes) per local item from (item, worker, answer) votes through the consensus engine, with each
    worker's confusion from the last refit (unknown workers: DEFAULT_ACCURACY; blocked: weight 0)."""
    worker_ids = sorted({w for _, w, _ in votes})
    confusion, weights = _worker_confusions(worker_ids)
    index = {w: i for i, w in enumerate(worker_ids)}
    items = np.array([i for i, _, _ in votes], dtype=np.intp)
    workers = np.array([index[w] for _, w, _ in votes], dtype=np.intp)
    labels = np.array([a for _, _, a in votes], dtype=np.intp)
    if not votes:
        confusion = np.zeros((0, 2, 2))
    p = item_posteriors(items, workers, labels, n, confusion, np.array([1 - PRIOR_YES, PRIOR_YES]),
                        worker_weights=weights if votes else None)[:, 1]  # fmt: skip
    counted = np.bincount(items, weights=weights[workers] if votes else None, minlength=n).round().astype(int)
    return p, counted


def _states(p: np.ndarray, counted: np.ndarray) -> np.ndarray:
    return item_states(p, counted, threshold=CONFIDENCE, min_votes=MIN_VOTES, max_votes=MAX_VOTES)


def _decide_boxes(boxes: list[Box], jobs: dict[int, BoxJob]) -> None:
    """Quality votes → box state; an accepted box is merged or kept, then its image goes to coverage; a
    rejected (or unresolved) box sends its image back to drawing."""
    fields = ["state", "posterior", "votes_count", "yes_count", "pending_count", "merged_into"]
    Box.objects.bulk_update([b for b in boxes if b.state != Box.State.VERIFYING], fields)  # counters only
    boxes = [b for b in boxes if b.state == Box.State.VERIFYING]
    local = {b.id: i for i, b in enumerate(boxes)}
    votes = list(
        BoxAnswer.objects.filter(
            box_id__in=list(local), kind=Kind.QUALITY, is_gold=False, answer__lt=A.CANT_TELL
        ).values_list("box_id", "worker_id", "answer")
    )
    p, counted = _posteriors([(local[b], w, a) for b, w, a in votes], len(boxes))
    for box, state, posterior in zip(boxes, _states(p, counted), p, strict=True):
        box.posterior = float(posterior)
        job = jobs[box.job_id]
        if state == ItemState.ACCEPTED:
            _accept_box(box, job)
            if job.state == BoxJob.State.QUALITY:
                _start_coverage(job)
        elif state in (ItemState.REJECTED, ItemState.UNRESOLVED):
            box.state = Box.State.REJECTED
            if job.state == BoxJob.State.QUALITY:
                _next_round(job)
        box.save(update_fields=fields)
    for job in jobs.values():
        job.save()


def _reliability(worker_ids: list[int | None]) -> np.ndarray:
    known = dict(
        WorkerProfile.objects.filter(user_id__in=[w for w in worker_ids if w]).values_list("user_id", "reliability")
    )
    return np.array([known.get(w) or DEFAULT_ACCURACY for w in worker_ids])


def _accept_box(box: Box, job: BoxJob) -> None:
    """Accept a verified box; if it covers an instance that already has an accepted box (IoU at or above
    ILSVRC's tolerance), both become members of one merged box (AGGREGATION.md), so the dataset never holds
    two boxes of one instance."""
    box.state = Box.State.ACCEPTED
    accepted = list(job.boxes.filter(state=Box.State.ACCEPTED).exclude(id=box.id).order_by("id"))
    if not accepted:
        return
    iou = iou_matrix([box.coords], [a.coords for a in accepted])[0]
    thr = np.minimum(small_object_threshold([box.coords], MERGE_IOU)[0],
                     small_object_threshold([a.coords for a in accepted], MERGE_IOU))  # fmt: skip
    hits = np.flatnonzero(iou >= thr)
    if not len(hits):
        return
    target = accepted[int(hits[np.argmax(iou[hits])])]
    if target.drawn_by_id is None and target.members.exists():
        merged = target  # already a merged box: add a member
    else:
        merged = Box.objects.create(
            job=job, candidate_id=job.candidate_id, x1=target.x1, y1=target.y1, x2=target.x2, y2=target.y2,
            round=job.round, state=Box.State.ACCEPTED, posterior=target.posterior,
        )  # fmt: skip
        target.state = Box.State.MERGED
        target.merged_into = merged
        target.save(update_fields=["state", "merged_into"])
    box.state = Box.State.MERGED
    box.merged_into = merged
    members = [*merged.members.exclude(id=box.id), box]
    drawers = [m.drawn_by_id for m in members]
    workers = np.arange(len(members))  # one code per member: each is a separate, verified drawing
    out = aggregate_boxes([m.coords for m in members], workers, _reliability(drawers), iou_threshold=0.0,
                          small_object=False).boxes  # fmt: skip
    # iou_threshold=0 puts every member in one cluster (they are one instance by the test above).
    x1, y1, x2, y2 = (math.floor(v + 0.5) for v in out[0])
    Box.objects.filter(id=merged.id).update(x1=x1, y1=y1, x2=x2, y2=y2)


def _start_coverage(job: BoxJob) -> None:
    if job.boxes.filter(state=Box.State.ACCEPTED).count() >= MAX_BOXES_PER_IMAGE:
        job.state = BoxJob.State.DONE
        return
    job.state = BoxJob.State.COVERAGE
    job.votes_count = job.yes_count = 0
    job.posterior = None


def _next_round(job: BoxJob) -> None:
    job.round += 1
    job.votes_count = job.yes_count = 0
    job.posterior = None
    if job.round >= MAX_ROUNDS:
        job.state = BoxJob.State.UNRESOLVED
    else:
        job.state = BoxJob.State.DRAW


def _decide_coverage(jobs: list[BoxJob]) -> None:
    jobs = [j for j in jobs if j.state == BoxJob.State.COVERAGE]
    if jobs:
        local = {(j.id, j.round): i for i, j in enumerate(jobs)}
        q = Q()
        for j in jobs:
            q |= Q(job_id=j.id, round=j.round)
        votes = BoxAnswer.objects.filter(q, kind=Kind.COVERAGE, answer__lt=A.CANT_TELL).values_list(
            "job_id", "round", "worker_id", "answer"
        )
        p, counted = _posteriors([(local[(j, r)], w, a) for j, r, w, a in votes], len(jobs))
        for job, state, posterior in zip(jobs, _states(p, counted), p, strict=True):
            job.posterior = float(posterior)
            if state == ItemState.ACCEPTED:
                job.state = BoxJob.State.DONE
            elif state in (ItemState.REJECTED, ItemState.UNRESOLVED):
                _next_round(job)
    for job in jobs:
        job.save()
