"""The scheduler and HIT submission (see scheduler.md in this folder)."""

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Forbidden, Gone, NotFound
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, HitItem, Vote
from annotation.services import rollups
from workers.models import LedgerEntry, Qualification, WorkerProfile

# How many of the campaign's synsets (furthest behind first) one request tries before saying "no work".
SYNSETS_TRIED = 25
# Priority of a candidate whose newest votes the consensus job has not weighed yet (see _needs_votes).
AWAITING_CONSENSUS = -1.0
ANSWERS = {"absent": Vote.Answer.ABSENT, "present": Vote.Answer.PRESENT, "cant_tell": Vote.Answer.CANT_TELL}
MAX_RESPONSE_MS = 3_600_000


def _open_states() -> list[str]:
    return [Candidate.State.NEW, Candidate.State.VOTING]


def qualification_require(*, worker: User, campaign: Campaign) -> Qualification:
    qualification = Qualification.objects.filter(worker=worker, campaign=campaign).first()
    if qualification is None or qualification.status == Qualification.Status.TRIAL:
        raise Forbidden("Pass this campaign's qualification quiz before labelling.")
    if qualification.status == Qualification.Status.BLOCKED:
        raise Forbidden("You are blocked from this campaign.")
    return qualification


def hits_expire(*, limit: int = 500) -> int:
    """Expire open HITs past their lease and give their unanswered items back to the queue.

    Safe under concurrency: each HIT is claimed by a conditional UPDATE (status still open), so a lease
    is returned exactly once even when several requests expire at the same moment."""
    now = timezone.now()
    due = list(
        Hit.objects.filter(status=Hit.Status.OPEN, expires_at__lte=now)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(_expire_one(hit_id) for hit_id in due)


@transaction.atomic
def _expire_one(hit_id: int) -> bool:
    if not Hit.objects.filter(id=hit_id, status=Hit.Status.OPEN).update(status=Hit.Status.EXPIRED):
        return False
    _release(HitItem.objects.filter(hit_id=hit_id, is_gold=False).values_list("candidate_id", flat=True))
    return True


def _release(candidate_ids) -> None:
    """Decrement outstanding leases, once per lease (a candidate can appear in several expiring HITs)."""
    by_count: dict[int, list[int]] = {}
    for candidate_id, count in Counter(candidate_ids).items():
        by_count.setdefault(count, []).append(candidate_id)
    for count, ids in by_count.items():
        Candidate.objects.filter(id__in=ids).update(pending_count=F("pending_count") - count)


def _needs_votes(campaign: Campaign) -> Q:
    """Candidates still short of votes, counting outstanding leases: below min_votes they need the rest;
    once past it, an undecided candidate needs one more at a time; never beyond max_votes."""
    return Q(state__in=_open_states(), votes_count__lt=campaign.max_votes) & (
        Q(votes_count__lt=campaign.min_votes, pending_count__lt=campaign.min_votes - F("votes_count"))
        # priority < 0: votes arrived that consensus has not weighed yet (set by _record, cleared by the
        # consensus job); with a real Celery worker that takes a moment, and leasing the candidate meanwhile
        # would buy a vote the decision may no longer need.
        | Q(votes_count__gte=campaign.min_votes, pending_count=0, priority__gte=0)
    )


_last_expiry = 0.0


def _expire_now_and_then(every_seconds: float = 5.0) -> None:
    """Lazy lease expiry, at most every few seconds per process (plus the periodic job): running it on
    every request cost a query per next-HIT for nothing, since leases last minutes."""
    global _last_expiry
    now = time.monotonic()
    if now - _last_expiry >= every_seconds:
        _last_expiry = now
        hits_expire(limit=50)


def _lease_candidates(*, worker: User, campaign: Campaign, synset_id: int, size: int) -> list[int]:
    seen = HitItem.objects.filter(worker=worker, candidate_id=OuterRef("pk"))
    # Gold is excluded with NOT EXISTS rather than a LEFT JOIN … IS NULL: the join made PostgreSQL hash the
    # whole gold table and sort the synset's every open candidate (2.5 ms at 10^6 rows); the anti join walks
    # the candidate_queue index in order and stops after `size` rows (0.07 ms).
    is_gold = GoldItem.objects.filter(candidate_id=OuterRef("pk"))
    queryset = (
        Candidate.objects.filter(_needs_votes(campaign), synset_id=synset_id)
        .exclude(Exists(is_gold))
        .exclude(Exists(seen))
        .order_by("-priority", "id")
    )
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent schedulers skip rows another transaction is leasing instead of waiting on them;
        # PostgreSQL re-checks the WHERE clause on the locked row, so counts stay within the need.
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    ids = list(queryset.values_list("id", flat=True)[:size])
    if ids:
        Candidate.objects.filter(id__in=ids).update(
            pending_count=F("pending_count") + 1,
            state=Case(When(state=Candidate.State.NEW, then=Value(Candidate.State.VOTING)), default=F("state")),
        )
    return ids


def _gold_for(*, worker: User, synset_id: int, count: int, rng: random.Random) -> list[int]:
    if count <= 0:
        return []
    seen = HitItem.objects.filter(worker=worker, candidate_id=OuterRef("candidate_id"))
    pool = list(
        GoldItem.objects.filter(candidate__synset_id=synset_id)
        .exclude(Exists(seen))
        .values_list("candidate_id", flat=True)[:500]
    )
    return rng.sample(pool, min(count, len(pool)))


def _synsets_by_need(campaign: Campaign) -> list[int]:
    """Furthest behind the target first (fewest accepted), ties broken at random so that concurrent
    workers spread over synsets instead of all contending for one."""
    rows = list(CampaignSynset.objects.filter(campaign=campaign).values_list("synset_id", "accepted"))
    random.shuffle(rows)
    rows.sort(key=lambda row: row[1])
    return [synset_id for synset_id, _ in rows[:SYNSETS_TRIED]]


def hit_next(*, worker: User, campaign: Campaign) -> Hit | None:
    """The worker's open HIT in this campaign, or a new one leased from the synset furthest behind its
    target; None when nothing is left for this worker."""
    if campaign.state != Campaign.State.RUNNING:
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running.")
    qualification_require(worker=worker, campaign=campaign)
    _expire_now_and_then()
    now = timezone.now()
    existing = Hit.objects.filter(worker=worker, campaign=campaign, status=Hit.Status.OPEN).first()
    if existing is not None:
        if existing.expires_at > now:
            return existing
        _expire_one(existing.id)
    hit = _lease_hit(worker=worker, campaign=campaign, now=now)
    if hit is None and hits_expire(limit=500):
        # Nothing open for this worker, but expired leases were holding items back: try once more.
        hit = _lease_hit(worker=worker, campaign=campaign, now=now)
    return hit


def _lease_hit(*, worker: User, campaign: Campaign, now) -> Hit | None:
    rng = random.Random()
    for synset_id in _synsets_by_need(campaign):
        try:
            with transaction.atomic():
                n_gold = sum(rng.random() < campaign.gold_rate for _ in range(campaign.images_per_hit))
                real = _lease_candidates(
                    worker=worker, campaign=campaign, synset_id=synset_id, size=campaign.images_per_hit - n_gold
                )
                if not real:
                    continue
                gold = _gold_for(worker=worker, synset_id=synset_id, count=n_gold, rng=rng)
                hit = Hit.objects.create(
                    campaign=campaign,
                    synset_id=synset_id,
                    worker=worker,
                    expires_at=now + timedelta(seconds=campaign.lease_seconds),
                )
                items = [(cid, False) for cid in real] + [(cid, True) for cid in gold]
                rng.shuffle(items)
                HitItem.objects.bulk_create(
                    HitItem(hit=hit, worker=worker, candidate_id=cid, position=i, is_gold=is_gold)
                    for i, (cid, is_gold) in enumerate(items)
                )
                return hit
        except IntegrityError:
            # Another request of the same worker opened a HIT in this campaign meanwhile: return that one.
            existing = Hit.objects.filter(worker=worker, campaign=campaign, status=Hit.Status.OPEN).first()
            if existing is not None:
                return existing
            raise
    return None


@dataclass(frozen=True)
class SubmitResult:
    hit_id: int
    answers: int
    earned: str
    replayed: bool = False


def _parse_answers(hit: Hit, answers: list[dict]) -> list[tuple[HitItem, int, int]]:
    if not isinstance(answers, list):
        raise AnnotationError("answers must be a list of {item, answer, ms} objects.")
    items = {item.id: item for item in hit.items.all()}
    parsed: dict[int, tuple[HitItem, int, int]] = {}
    for entry in answers:
        if not isinstance(entry, dict):
            raise AnnotationError("Each answer must be an object with item, answer and ms.")
        item_id, answer, ms = entry.get("item"), entry.get("answer"), entry.get("ms", 0)
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise AnnotationError(f"item must be an integer id; got {item_id!r}.")
        if item_id not in items:
            raise AnnotationError(f"Item {item_id} is not part of HIT {hit.id}.")
        if item_id in parsed:
            raise AnnotationError(f"Item {item_id} is answered twice.")
        if answer not in ANSWERS:
            raise AnnotationError(f"answer must be present, absent or cant_tell; got {answer!r}.")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_RESPONSE_MS:
            raise AnnotationError(f"ms must be a whole number of milliseconds from 0 to {MAX_RESPONSE_MS}.")
        parsed[item_id] = (items[item_id], ANSWERS[answer], ms)
    missing = sorted(set(items) - set(parsed))
    if missing:
        raise AnnotationError(f"{len(missing)} items of HIT {hit.id} have no answer, e.g. item {missing[0]}.")
    return list(parsed.values())


def hit_submit(*, worker: User, hit_id: int, answers: list[dict], idempotency_key: str) -> SubmitResult:
    """Record a worker's answers to exactly the items of their open HIT, once.

    A retry with the same idempotency key returns the first result and writes nothing. Everything else
    (foreign or unknown HIT, expired lease, missing or extra items, bad values, a second submission with
    a new key) raises an AnnotationError and changes nothing."""
    if not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 64:
        raise AnnotationError("idempotency_key must be a string of 8 to 64 characters, new for each submission.")
    with transaction.atomic():
        # Lock only the HIT row: locking the campaign too would block every scheduler inserting a HIT.
        locked = Hit.objects.select_for_update(of=("self",)).select_related("campaign")
        hit = locked.filter(id=hit_id, worker=worker).first()
        if hit is None:
            raise NotFound(f"You have no HIT {hit_id}.")
        if hit.status == Hit.Status.SUBMITTED:
            if hit.idempotency_key == idempotency_key:
                return _result(hit, replayed=True)
            raise Conflict(f"HIT {hit.id} was already submitted.")
        if hit.status == Hit.Status.EXPIRED or hit.expires_at <= timezone.now():
            raise Gone(f"The lease on HIT {hit.id} expired; its images went back to the queue. Ask for a new HIT.")
        parsed = _parse_answers(hit, answers)
        _record(hit, parsed)
        hit.status = Hit.Status.SUBMITTED
        hit.submitted_at = timezone.now()
        hit.idempotency_key = idempotency_key
        hit.save(update_fields=["status", "submitted_at", "idempotency_key"])
        from annotation import tasks

        candidate_ids = [item.candidate_id for item, _, _ in parsed if not item.is_gold]
        transaction.on_commit(lambda: tasks.consensus_update.delay(candidate_ids))
        return _result(hit, answers=len(parsed))


def _result(hit: Hit, *, answers: int | None = None, replayed: bool = False) -> SubmitResult:
    return SubmitResult(
        hit_id=hit.id,
        answers=Vote.objects.filter(hit=hit).count() if answers is None else answers,
        earned=str(hit.campaign.reward_per_hit),
        replayed=replayed,
    )


def _record(hit: Hit, parsed: list[tuple[HitItem, int, int]]) -> None:
    worker_id = hit.worker_id
    Vote.objects.bulk_create(
        Vote(
            candidate_id=item.candidate_id,
            worker_id=worker_id,
            hit=hit,
            answer=answer,
            response_ms=ms,
            is_gold=item.is_gold,
        )
        for item, answer, ms in parsed
    )
    real = [(item.candidate_id, answer) for item, answer, _ in parsed if not item.is_gold]
    # Lock the candidates in id order before updating them in groups: concurrent submits over overlapping
    # candidates then queue up instead of deadlocking (the consensus job locks in the same order).
    list(Candidate.objects.select_for_update().filter(id__in=[c for c, _ in real]).order_by("id").values_list("id"))
    yes = [cid for cid, answer in real if answer == Vote.Answer.PRESENT]
    no = [cid for cid, answer in real if answer == Vote.Answer.ABSENT]
    unsure = [cid for cid, answer in real if answer == Vote.Answer.CANT_TELL]
    awaiting = AWAITING_CONSENSUS
    Candidate.objects.filter(id__in=yes).update(
        votes_count=F("votes_count") + 1,
        yes_count=F("yes_count") + 1,
        pending_count=F("pending_count") - 1,
        priority=awaiting,
    )
    Candidate.objects.filter(id__in=no).update(
        votes_count=F("votes_count") + 1, pending_count=F("pending_count") - 1, priority=awaiting
    )
    # "Can't tell" is recorded but is no vote either way; the lease is simply returned.
    Candidate.objects.filter(id__in=unsure).update(pending_count=F("pending_count") - 1)
    CampaignSynset.objects.filter(campaign_id=hit.campaign_id, synset_id=hit.synset_id).update(
        votes=F("votes") + len(yes) + len(no)
    )
    gold_answers = [(item.candidate_id, answer) for item, answer, _ in parsed if item.is_gold]
    truth = dict(
        GoldItem.objects.filter(candidate_id__in=[c for c, _ in gold_answers]).values_list("candidate_id", "present")
    )
    gold_correct = sum(answer == int(truth[cid]) for cid, answer in gold_answers)
    profile, _ = WorkerProfile.objects.get_or_create(user_id=worker_id)
    WorkerProfile.objects.filter(id=profile.id).update(
        hits_done=F("hits_done") + 1,
        answers=F("answers") + len(parsed),
        gold_answered=F("gold_answered") + len(gold_answers),
        gold_correct=F("gold_correct") + gold_correct,
        answer_ms_total=F("answer_ms_total") + sum(ms for _, _, ms in parsed),
    )
    LedgerEntry.objects.create(
        worker_id=worker_id, kind=LedgerEntry.Kind.HIT, amount=hit.campaign.reward_per_hit, hit=hit
    )
    rollups.hit_recorded(hit=hit, parsed=parsed, gold_correct=gold_correct)  # dashboard rollups, same transaction
