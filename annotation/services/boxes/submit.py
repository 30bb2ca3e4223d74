"""Submitting box tasks: strict parsing (a 4xx sentence, nothing stored, on bad input), idempotency, the
answers and the worker's ledger, then the state transitions of states.py in the same transaction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Gone, NotFound, shown
from annotation.models import Box, BoxAnswer, BoxJob, BoxTask, BoxTaskItem, Candidate
from annotation.services import rollups
from annotation.services.answers import answers_read
from workers.models import LedgerEntry, WorkerProfile

from .policy import ABSENT_TO_DROP, DRAW_ANSWERS, VERIFY_ANSWERS, A, Kind
from .states import _decide_boxes, _decide_coverage, _next_round, _start_coverage

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
        raise AnnotationError(f"Box coordinate {name} must be a number of pixels; got {shown(value)}.")
    if not math.isfinite(value):
        raise AnnotationError(f"Box coordinate {name} must be a finite number; got {shown(value)}.")
    if value != int(value):
        raise AnnotationError(f"Box coordinate {name} must be a whole pixel; got {shown(value)}.")
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
    items = {item.id: item for item in BoxTaskItem.objects.filter(task=task).select_related("job__candidate__image")}
    choices = DRAW_ANSWERS if task.kind == Kind.DRAW else VERIFY_ANSWERS
    parsed: list[_Parsed] = []
    for item_id, choice, ms, entry in answers_read(answers, items=items, choices=choices, unit=f"task {task.id}"):
        result = _Parsed(items[item_id], choice, ms)
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
            raise AnnotationError(f"Item {item_id} answers “{entry['answer']}” but carries {len(boxes)} box(es).")
        parsed.append(result)
    return parsed


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
                _same_answers_or_conflict(task, answers)
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


def _same_answers_or_conflict(task: BoxTask, answers) -> None:
    """A replay carries the answers (and boxes) the key first carried, a retry of a lost response: otherwise
    the key was reused for something else, which must not look recorded (as for HITs, hits.hit_submit).
    Response times are not compared."""
    try:
        sent = {p.item.id: (p.answer, p.box) for p in _parse_answers(task, answers)}
    except AnnotationError:
        sent = None
    stored = {
        item_id: (answer, None if x1 is None else (x1, y1, x2, y2))
        for item_id, answer, x1, y1, x2, y2 in BoxAnswer.objects.filter(item__task=task).values_list(
            "item_id", "answer", "drawn__x1", "drawn__y1", "drawn__x2", "drawn__y2"
        )
    }
    if sent != stored:
        raise Conflict(
            f"This idempotency key already submitted box task {task.id} with other answers; those were recorded "
            "and stand."
        )


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
    rollups.box_task_add(
        campaign_id=task.campaign_id,
        worker_id=task.worker_id,
        submitted_at=timezone.now(),
        reward=task.campaign.reward_per_hit,
        ms=sum(p.ms for p in parsed),
    )


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
