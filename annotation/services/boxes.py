"""The box pipeline: leasing draw / quality / coverage tasks, submitting them, and each candidate's and box's
state machine (see boxes.md in this folder; the scheduler patterns are those of hits.py / scheduler.md)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.boxes import aggregate_boxes, iou_matrix, small_object_threshold
from annotation.consensus import item_posteriors, item_states
from annotation.consensus.stopping import ItemState
from annotation.errors import AnnotationError, Conflict, Gone, NotFound
from annotation.models import Box, BoxAnswer, BoxJob, BoxTask, BoxTaskItem, Campaign, CampaignSynset, Candidate
from annotation.services.consensus import DEFAULT_ACCURACY, _worker_confusions
from annotation.services.hits import MAX_RESPONSE_MS, qualification_require
from workers.models import LedgerEntry, WorkerProfile

Kind = BoxTask.Kind
A = BoxAnswer.Answer

# Task sizes: drawing is slow (ILSVRC: ~25 s a box), verifying fast (a few seconds an item).
DRAW_PER_TASK = 4
VERIFY_PER_TASK = 12
# Stopping rule for quality and coverage votes (annotation.consensus.item_states). With workers of the
# default accuracy (0.8) three unanimous answers reach 0.985; two do not (0.94), so one dissent costs votes.
CONFIDENCE = 0.95
MIN_VOTES = 2
MAX_VOTES = 5
PRIOR_YES = 0.5
# Bounded rounds: a round ends each time the image goes back to drawing (a rejected box, a "not covered").
MAX_ROUNDS = 10
# "Object not present" from this many drawers, with no accepted box, takes the image out of the pipeline.
ABSENT_TO_DROP = 2
MAX_BOXES_PER_IMAGE = 50  # an image with this many accepted boxes is treated as covered (a crowd scene)
MERGE_IOU = 0.5  # with ILSVRC's small-object tolerance (annotation.boxes.small_object_threshold)
SYNSETS_TRIED = 25
ENTER_BATCH = 2000
ENTER_EVERY_SECONDS = 30

ACTIVE = [BoxJob.State.DRAW, BoxJob.State.QUALITY, BoxJob.State.COVERAGE]
DRAW_ANSWERS = {"box": A.BOX, "no_more": A.NO_MORE, "not_present": A.NOT_PRESENT, "skip": A.CANT_TELL}
VERIFY_ANSWERS = {"yes": A.YES, "no": A.NO, "cant_tell": A.CANT_TELL}


# ------------------------------------------------------------------------------------------- entering


def box_jobs_enter(*, campaign: Campaign, limit: int = ENTER_BATCH) -> int:
    """Accepted candidates of a boxes-enabled campaign's synsets enter the pipeline (one BoxJob each); jobs
    whose candidate is no longer accepted (a refit reopened it) are withdrawn. Idempotent; at most ``limit``
    new jobs per call (the periodic task calls it until nothing is left)."""
    if not campaign.boxes_enabled:
        return 0
    synsets = CampaignSynset.objects.filter(campaign=campaign).values("synset_id")
    has_job = BoxJob.objects.filter(candidate_id=OuterRef("pk"))
    new = list(
        Candidate.objects.filter(synset_id__in=synsets, state=Candidate.State.ACCEPTED)
        .exclude(Exists(has_job))
        .order_by("id")
        .values_list("id", "synset_id")[:limit]
    )
    BoxJob.objects.bulk_create(
        [BoxJob(candidate_id=cid, campaign=campaign, synset_id=sid) for cid, sid in new], ignore_conflicts=True
    )
    BoxJob.objects.filter(campaign=campaign, state__in=ACTIVE, draw_pending=0, pending_count=0).exclude(
        candidate__state=Candidate.State.ACCEPTED
    ).update(state=BoxJob.State.WITHDRAWN)
    return len(new)


# --------------------------------------------------------------------------------------------- leases


def box_tasks_expire(*, limit: int = 500) -> int:
    """Expire open box tasks past their lease and give their items back (claimed by a conditional UPDATE,
    so each lease is returned exactly once)."""
    due = list(
        BoxTask.objects.filter(status=BoxTask.Status.OPEN, expires_at__lte=timezone.now())
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(_expire_one(task_id) for task_id in due)


@transaction.atomic
def _expire_one(task_id: int) -> bool:
    if not BoxTask.objects.filter(id=task_id, status=BoxTask.Status.OPEN).update(status=BoxTask.Status.EXPIRED):
        return False
    _release(BoxTaskItem.objects.filter(task_id=task_id, is_gold=False))
    return True


def _release(items) -> None:
    """Return the leases of these (unanswered) items: one decrement per lease."""
    rows = list(items.values_list("kind", "job_id", "box_id"))
    for model, field, ids in (
        (BoxJob, "draw_pending", [j for k, j, _ in rows if k == Kind.DRAW]),
        (BoxJob, "pending_count", [j for k, j, _ in rows if k == Kind.COVERAGE]),
        (Box, "pending_count", [b for k, _, b in rows if k == Kind.QUALITY]),
    ):
        by_count: dict[int, list[int]] = {}
        for row_id, count in Counter(ids).items():
            by_count.setdefault(count, []).append(row_id)
        for count, row_ids in by_count.items():
            model.objects.filter(id__in=row_ids).update(**{field: F(field) - count})


def _needs_votes() -> Q:
    """Same rule as the presence scheduler: up to MIN_VOTES leases at once, then one at a time."""
    return Q(votes_count__lt=MAX_VOTES) & (
        Q(votes_count__lt=MIN_VOTES, pending_count__lt=MIN_VOTES - F("votes_count"))
        | Q(votes_count__gte=MIN_VOTES, pending_count=0)
    )


def _locked(queryset):
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent schedulers skip rows another transaction is leasing; PostgreSQL re-checks the WHERE
        # clause on rows changed since the snapshot, so counters never exceed the need (scheduler.md).
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def _lease_jobs(*, worker: User, campaign: Campaign, synset_id: int, kind: str, size: int) -> list[tuple[int, int]]:
    seen = BoxTaskItem.objects.filter(
        worker=worker, job_id=OuterRef("pk"), kind=kind, round=OuterRef("round"), box__isnull=True
    )
    if kind == Kind.DRAW:
        need = Q(state=BoxJob.State.DRAW, draw_pending=0)
        counter = "draw_pending"
    else:
        need = Q(state=BoxJob.State.COVERAGE) & _needs_votes()
        counter = "pending_count"
    queryset = BoxJob.objects.filter(need, campaign=campaign, synset_id=synset_id).exclude(Exists(seen)).order_by("id")
    rows = list(_locked(queryset).values_list("id", "round")[:size])
    if rows:
        BoxJob.objects.filter(id__in=[r[0] for r in rows]).update(**{counter: F(counter) + 1})
    return rows


def _lease_boxes(*, worker: User, campaign: Campaign, synset_id: int, size: int) -> list[int]:
    seen = BoxTaskItem.objects.filter(worker=worker, box_id=OuterRef("pk"))
    queryset = (
        Box.objects.filter(_needs_votes(), state=Box.State.VERIFYING, job__campaign=campaign, job__synset_id=synset_id)
        .exclude(drawn_by=worker)  # nobody verifies their own box
        .exclude(Exists(seen))
        .order_by("id")
    )
    ids = list(_locked(queryset).values_list("id", flat=True)[:size])
    if ids:
        Box.objects.filter(id__in=ids).update(pending_count=F("pending_count") + 1)
    return ids


def _gold_boxes(*, worker: User, synset_id: int, count: int, rng: random.Random) -> list[int]:
    if count <= 0:
        return []
    seen = BoxTaskItem.objects.filter(worker=worker, box_id=OuterRef("pk"))
    pool = list(
        Box.objects.filter(gold__isnull=False, candidate__synset_id=synset_id)
        .exclude(Exists(seen))
        .values_list("id", flat=True)[:500]
    )
    return rng.sample(pool, min(count, len(pool)))


def _synsets(campaign: Campaign) -> list[int]:
    ids = list(CampaignSynset.objects.filter(campaign=campaign).values_list("synset_id", flat=True))
    random.shuffle(ids)  # concurrent workers spread over synsets instead of contending for the same rows
    return ids[:SYNSETS_TRIED]


def box_task_next(*, worker: User, campaign: Campaign, kind: str) -> BoxTask | None:
    """The worker's open task of this kind in this campaign, or a newly leased one; None when there is no
    such work left for this worker."""
    if kind not in Kind.values:
        raise NotFound(f"There is no box task kind “{kind}”; use draw, quality or coverage.")
    if campaign.state != Campaign.State.RUNNING:
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running.")
    if not campaign.boxes_enabled:
        raise Conflict(f"Campaign “{campaign.name}” does not collect boxes.")
    qualification_require(worker=worker, campaign=campaign)
    if cache.add(f"boxes-enter:{campaign.id}", 1, ENTER_EVERY_SECONDS):
        box_jobs_enter(campaign=campaign)
    box_tasks_expire(limit=50)
    now = timezone.now()
    existing = BoxTask.objects.filter(worker=worker, campaign=campaign, kind=kind, status=BoxTask.Status.OPEN).first()
    if existing is not None:
        if existing.expires_at > now:
            return existing
        _expire_one(existing.id)
    rng = random.Random()
    size = DRAW_PER_TASK if kind == Kind.DRAW else min(VERIFY_PER_TASK, campaign.images_per_hit)
    for synset_id in _synsets(campaign):
        try:
            with transaction.atomic():
                items: list[dict] = []
                if kind == Kind.QUALITY:
                    n_gold = sum(rng.random() < campaign.gold_rate for _ in range(size))
                    real = _lease_boxes(worker=worker, campaign=campaign, synset_id=synset_id, size=size - n_gold)
                    if not real:
                        continue
                    items = [{"box_id": b} for b in real] + [
                        {"box_id": b, "is_gold": True}
                        for b in _gold_boxes(worker=worker, synset_id=synset_id, count=n_gold, rng=rng)
                    ]
                else:
                    rows = _lease_jobs(worker=worker, campaign=campaign, synset_id=synset_id, kind=kind, size=size)
                    if not rows:
                        continue
                    items = [{"job_id": job_id, "round": rnd} for job_id, rnd in rows]
                task = BoxTask.objects.create(
                    campaign=campaign,
                    synset_id=synset_id,
                    worker=worker,
                    kind=kind,
                    expires_at=now + timedelta(seconds=campaign.lease_seconds),
                )
                rng.shuffle(items)
                BoxTaskItem.objects.bulk_create(
                    BoxTaskItem(task=task, worker=worker, kind=kind, position=i, **item) for i, item in enumerate(items)
                )
                return task
        except IntegrityError:
            # A concurrent request of the same worker opened a task of this kind: return that one.
            existing = BoxTask.objects.filter(
                worker=worker, campaign=campaign, kind=kind, status=BoxTask.Status.OPEN
            ).first()
            if existing is not None:
                return existing
            raise
    return None


# --------------------------------------------------------------------------------------------- submit


@dataclass(frozen=True)
class BoxSubmitResult:
    task_id: int
    kind: str
    answers: int
    boxes: list[int]
    earned: str
    replayed: bool = False


def _coordinate(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnnotationError(f"Box coordinate {name} must be a number of pixels; got {value!r}.")
    if not math.isfinite(value):
        raise AnnotationError(f"Box coordinate {name} must be a finite number; got {value!r}.")
    if value != int(value):
        raise AnnotationError(f"Box coordinate {name} must be a whole pixel; got {value!r}.")
    return int(value)


def parse_box(value, *, width: int, height: int) -> tuple[int, int, int, int]:
    """A box as ``[x1, y1, x2, y2]`` or ``{"x1": …}`` in whole pixels of the displayed image, inside it,
    with positive width and height; raises AnnotationError with a sentence otherwise."""
    names = ("x1", "y1", "x2", "y2")
    if isinstance(value, dict):
        if sorted(value) != sorted(names):
            raise AnnotationError(f"A box needs exactly the keys x1, y1, x2, y2; got {sorted(value)}.")
        value = [value[n] for n in names]
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise AnnotationError("A box is [x1, y1, x2, y2] (or an object with those keys) in image pixels.")
    x1, y1, x2, y2 = (_coordinate(v, n) for v, n in zip(value, names, strict=True))
    if x2 <= x1 or y2 <= y1:
        raise AnnotationError(f"The box {[x1, y1, x2, y2]} has no area: x2 must exceed x1 and y2 exceed y1.")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise AnnotationError(f"The box {[x1, y1, x2, y2]} lies outside the {width}×{height} image.")
    return x1, y1, x2, y2


@dataclass
class _Parsed:
    item: BoxTaskItem
    answer: int
    ms: int
    box: tuple[int, int, int, int] | None = None


def _parse_answers(task: BoxTask, answers) -> list[_Parsed]:
    if not isinstance(answers, list):
        raise AnnotationError("answers must be a list of {item, answer, ms} objects.")
    items = {item.id: item for item in BoxTaskItem.objects.filter(task=task).select_related("job__candidate__image")}
    choices = DRAW_ANSWERS if task.kind == Kind.DRAW else VERIFY_ANSWERS
    parsed: dict[int, _Parsed] = {}
    for entry in answers:
        if not isinstance(entry, dict):
            raise AnnotationError("Each answer must be an object with item, answer and ms.")
        item_id, answer, ms = entry.get("item"), entry.get("answer"), entry.get("ms", 0)
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise AnnotationError(f"item must be an integer id; got {item_id!r}.")
        if item_id not in items:
            raise AnnotationError(f"Item {item_id} is not part of task {task.id}.")
        if item_id in parsed:
            raise AnnotationError(f"Item {item_id} is answered twice.")
        if answer not in choices:
            raise AnnotationError(f"answer must be one of {', '.join(choices)}; got {answer!r}.")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_RESPONSE_MS:
            raise AnnotationError(f"ms must be a whole number of milliseconds from 0 to {MAX_RESPONSE_MS}.")
        result = _Parsed(items[item_id], choices[answer], ms)
        boxes = entry.get("boxes", [])
        if task.kind != Kind.DRAW and "boxes" in entry:
            raise AnnotationError(f"A {task.kind} answer carries no boxes (item {item_id}).")
        if not isinstance(boxes, list):
            raise AnnotationError(f"boxes must be a list (item {item_id}).")
        if result.answer == A.BOX:
            if len(boxes) != 1:
                raise AnnotationError(
                    f"Draw exactly one box per image and task (item {item_id} has {len(boxes)}); "
                    "the next instance is drawn in a later task."
                )
            image = result.item.job.candidate.image
            result.box = parse_box(boxes[0], width=image.width, height=image.height)
        elif boxes:
            raise AnnotationError(f"Item {item_id} answers “{answer}” but carries {len(boxes)} box(es).")
        parsed[item_id] = result
    missing = sorted(set(items) - set(parsed))
    if missing:
        raise AnnotationError(f"{len(missing)} items of task {task.id} have no answer, e.g. item {missing[0]}.")
    return list(parsed.values())


def box_task_submit(*, worker: User, task_id: int, answers, idempotency_key: str) -> BoxSubmitResult:
    """Record a worker's answers to exactly the items of their open box task, once, and move the state
    machines of the touched images and boxes. A retry with the same key returns the first result and
    writes nothing; anything else wrong raises an AnnotationError and changes nothing."""
    if not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 64:
        raise AnnotationError("idempotency_key must be a string of 8 to 64 characters, new for each submission.")
    with transaction.atomic():
        locked = BoxTask.objects.select_for_update(of=("self",)).select_related("campaign")
        task = locked.filter(id=task_id, worker=worker).first()
        if task is None:
            raise NotFound(f"You have no box task {task_id}.")
        if task.status == BoxTask.Status.SUBMITTED:
            if task.idempotency_key == idempotency_key:
                return _result(task, replayed=True)
            raise Conflict(f"Box task {task.id} was already submitted.")
        if task.status == BoxTask.Status.EXPIRED or task.expires_at <= timezone.now():
            raise Gone(f"The lease on box task {task.id} expired; its items went back to the queue.")
        parsed = _parse_answers(task, answers)
        if task.kind == Kind.DRAW:
            _record_draw(task, parsed)
        elif task.kind == Kind.QUALITY:
            _record_quality(task, parsed)
        else:
            _record_coverage(task, parsed)
        _record_worker(task, parsed)
        task.status = BoxTask.Status.SUBMITTED
        task.submitted_at = timezone.now()
        task.idempotency_key = idempotency_key
        task.save(update_fields=["status", "submitted_at", "idempotency_key"])
        return _result(task)


def _result(task: BoxTask, *, replayed: bool = False) -> BoxSubmitResult:
    answers = BoxAnswer.objects.filter(item__task=task)
    return BoxSubmitResult(
        task_id=task.id,
        kind=task.kind,
        answers=answers.count(),
        boxes=list(answers.filter(drawn__isnull=False).order_by("id").values_list("drawn_id", flat=True)),
        earned=str(task.campaign.reward_per_hit),
        replayed=replayed,
    )


def _answer(task: BoxTask, p: _Parsed, *, drawn: Box | None = None) -> BoxAnswer:
    return BoxAnswer(
        item=p.item,
        worker_id=task.worker_id,
        kind=task.kind,
        job_id=p.item.job_id,
        box_id=p.item.box_id,
        round=p.item.round,
        answer=p.answer,
        drawn=drawn,
        response_ms=p.ms,
        is_gold=p.item.is_gold,
    )


def _lock_jobs(job_ids) -> dict[int, BoxJob]:
    """Jobs are always locked before boxes, each in id order, by every writer: no deadlocks."""
    jobs = BoxJob.objects.select_for_update().filter(id__in=set(job_ids)).order_by("id")
    return {job.id: job for job in jobs}


def _record_draw(task: BoxTask, parsed: list[_Parsed]) -> None:
    jobs = _lock_jobs(p.item.job_id for p in parsed)
    rows = []
    for p in parsed:
        job = jobs[p.item.job_id]
        job.draw_pending -= 1
        current = job.state == BoxJob.State.DRAW and p.item.round == job.round
        drawn = None
        if p.answer == A.BOX:
            x1, y1, x2, y2 = p.box
            drawn = Box.objects.create(
                job=job,
                candidate_id=job.candidate_id,
                drawn_by_id=task.worker_id,
                x1=x1,
                y1=y1,
                x2=x2,
                y2=y2,
                round=job.round,
                state=Box.State.VERIFYING if current else Box.State.DRAWN,
            )
            if current:
                job.state = BoxJob.State.QUALITY
        elif current and p.answer in (A.NO_MORE, A.NOT_PRESENT):
            if job.boxes.filter(state=Box.State.ACCEPTED).exists():
                _start_coverage(job)
            else:
                job.absent_count += 1
                if job.absent_count >= ABSENT_TO_DROP:
                    job.state = BoxJob.State.NO_OBJECT
                else:
                    _next_round(job)
        rows.append(_answer(task, p, drawn=drawn))
        job.save()
    BoxAnswer.objects.bulk_create(rows)


def _record_quality(task: BoxTask, parsed: list[_Parsed]) -> None:
    real = [p for p in parsed if not p.item.is_gold]
    box_jobs = dict(Box.objects.filter(id__in=[p.item.box_id for p in real]).values_list("id", "job_id"))
    jobs = _lock_jobs(box_jobs.values())
    boxes = {b.id: b for b in Box.objects.select_for_update().filter(id__in=list(box_jobs)).order_by("id")}
    BoxAnswer.objects.bulk_create(_answer(task, p) for p in parsed)
    for p in real:
        box = boxes[p.item.box_id]
        box.pending_count -= 1
        if p.answer != A.CANT_TELL:
            box.votes_count += 1
            box.yes_count += p.answer == A.YES
    _decide_boxes(list(boxes.values()), jobs)


def _record_coverage(task: BoxTask, parsed: list[_Parsed]) -> None:
    jobs = _lock_jobs(p.item.job_id for p in parsed)
    BoxAnswer.objects.bulk_create(_answer(task, p) for p in parsed)
    for p in parsed:
        job = jobs[p.item.job_id]
        job.pending_count -= 1
        if p.answer != A.CANT_TELL and p.item.round == job.round:
            job.votes_count += 1
            job.yes_count += p.answer == A.YES
    _decide_coverage(list(jobs.values()))


def _record_worker(task: BoxTask, parsed: list[_Parsed]) -> None:
    gold = [p for p in parsed if p.item.is_gold]
    truth = dict(Box.objects.filter(id__in=[p.item.box_id for p in gold]).values_list("id", "gold"))
    correct = sum(p.answer == (A.YES if truth[p.item.box_id] else A.NO) for p in gold)
    profile, _ = WorkerProfile.objects.get_or_create(user_id=task.worker_id)
    WorkerProfile.objects.filter(id=profile.id).update(
        hits_done=F("hits_done") + 1,
        answers=F("answers") + len(parsed),
        gold_answered=F("gold_answered") + len(gold),
        gold_correct=F("gold_correct") + correct,
        answer_ms_total=F("answer_ms_total") + sum(p.ms for p in parsed),
    )
    LedgerEntry.objects.create(
        worker_id=task.worker_id,
        kind=LedgerEntry.Kind.HIT,
        amount=task.campaign.reward_per_hit,
        note=f"box {task.kind} task {task.id}",
    )


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


# ---------------------------------------------------------------------------------------------- gold


@transaction.atomic
def box_gold_create(*, candidate: Candidate, box, good: bool, created_by: User | None = None) -> Box:
    """A gold box with a known verdict (good: tight around one instance), mixed into quality tasks of the
    candidate's synset. Gold boxes belong to no job and never reach the dataset."""
    coords = parse_box(box, width=candidate.image.width, height=candidate.image.height)
    x1, y1, x2, y2 = coords
    return Box.objects.create(
        candidate=candidate, drawn_by=created_by, x1=x1, y1=y1, x2=x2, y2=y2, gold=good, state=Box.State.DRAWN
    )
