"""The scheduler and HIT submission (see scheduler.md in this folder)."""

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Forbidden, Gone, NotFound
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, HitItem, Vote
from annotation.services import rollups
from taxonomy.models import Synset
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
    _check_qualification(qualification.status if qualification else None)
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
    voting = Case(When(state=Candidate.State.NEW, then=Value(Candidate.State.VOTING)), default=F("state"))
    if connection.vendor == "postgresql":
        # One round trip: UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING id.
        # Concurrent schedulers skip rows another transaction is leasing instead of waiting on them;
        # PostgreSQL re-checks the WHERE clause on a row that changed since the statement's snapshot, so
        # counts stay within the need.
        select_sql, select_params = (
            queryset.select_for_update(skip_locked=True, of=("self",)).values("id")[:size].query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE annotation_candidate SET pending_count = pending_count + 1, "
                "state = CASE WHEN state = %s THEN %s ELSE state END "
                f"WHERE id IN ({select_sql}) RETURNING id".replace("annotation_candidate", Candidate._meta.db_table, 1),
                [Candidate.State.NEW.value, Candidate.State.VOTING.value, *select_params],
            )
            return [row[0] for row in cursor.fetchall()]
    # SQLite: transactions are IMMEDIATE (writers serialised), so read then update needs no row locks.
    ids = list(queryset.values_list("id", flat=True)[:size])
    if ids:
        Candidate.objects.filter(id__in=ids).update(pending_count=F("pending_count") + 1, state=voting)
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


_need_cache: dict[tuple, tuple[float, list[tuple[int, int]]]] = {}
NEED_CACHE_SECONDS = 2.0


def _synsets_by_need(campaign: Campaign) -> list[int]:
    """Furthest behind the target first (fewest accepted), ties broken at random so that concurrent
    workers spread over synsets instead of all contending for one. The (synset, accepted) list is read at
    most every NEED_CACHE_SECONDS per process: accepted counts move slowly, and reading a campaign's 1,000
    rows on every request cost a query and a millisecond of Python."""
    now = time.monotonic()
    key = (campaign.id, campaign.created)  # ids come back after a rollback on SQLite (tests)
    cached = _need_cache.get(key)
    if cached is None or now - cached[0] >= NEED_CACHE_SECONDS:
        rows = list(CampaignSynset.objects.filter(campaign=campaign).values_list("synset_id", "accepted"))
        if len(_need_cache) > 1000:
            _need_cache.clear()
        _need_cache[key] = cached = (now, rows)
    rows = list(cached[1])
    random.shuffle(rows)
    rows.sort(key=lambda row: row[1])
    return [synset_id for synset_id, _ in rows[:SYNSETS_TRIED]]


def _check_qualification(status: str | None) -> None:
    if status is None or status == Qualification.Status.TRIAL:
        raise Forbidden("Pass this campaign's qualification quiz before labelling.")
    if status == Qualification.Status.BLOCKED:
        raise Forbidden("You are blocked from this campaign.")


_synset_cache: dict[int, tuple[float, Synset]] = {}
SYNSET_CACHE_SECONDS = 300.0


def _synset(synset_id: int) -> Synset:
    """Synsets (lemmas, gloss) change only on a taxonomy import: kept per process for the HIT payload, for
    at most SYNSET_CACHE_SECONDS."""
    now = time.monotonic()
    cached = _synset_cache.get(synset_id)
    if cached is None or now - cached[0] >= SYNSET_CACHE_SECONDS:
        if len(_synset_cache) > 20_000:
            _synset_cache.clear()
        cached = _synset_cache[synset_id] = (now, Synset.objects.get(id=synset_id))
    return cached[1]


def hit_next(*, worker: User, campaign: Campaign) -> Hit | None:
    """The worker's open HIT in this campaign, or a new one leased from the synset furthest behind its
    target; None when nothing is left for this worker."""
    if campaign.state != Campaign.State.RUNNING:
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running.")
    # The qualification and the open HIT in one query.
    open_hit = Hit.objects.filter(worker=worker, campaign=campaign, status=Hit.Status.OPEN).values("id")[:1]
    found = (
        Qualification.objects.filter(worker=worker, campaign=campaign)
        .annotate(open_hit=Subquery(open_hit))
        .values_list("status", "open_hit")
        .first()
    )
    _check_qualification(found[0] if found else None)
    _expire_now_and_then()
    now = timezone.now()
    if found[1] is not None:
        existing = Hit.objects.filter(id=found[1], status=Hit.Status.OPEN).first()
        if existing is not None:
            if existing.expires_at > now:
                return existing
            _expire_one(existing.id)
    hit = _lease_hit(worker=worker, campaign=campaign, now=now)
    if hit is None and hits_expire(limit=500):
        # Nothing open for this worker, but expired leases were holding items back: try once more.
        hit = _lease_hit(worker=worker, campaign=campaign, now=now)
    if hit is not None:
        hit.synset = _synset(hit.synset_id)
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
                    synset=_synset(synset_id),
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


def _parse_answers(hit: Hit, items: dict[int, HitItem], answers: list[dict]) -> list[tuple[HitItem, int, int]]:
    if not isinstance(answers, list):
        raise AnnotationError("answers must be a list of {item, answer, ms} objects.")
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


def _locked_hit(*, worker: User, hit_id: int) -> tuple[Hit | None, dict[int, HitItem]]:
    """The worker's HIT, its row locked (SELECT … FOR UPDATE OF the HIT), with its campaign and its items
    (gold items with their known answer) in one query; (None, {}) when the worker has no such HIT."""
    truth = GoldItem.objects.filter(candidate_id=OuterRef("candidate_id")).values("present")[:1]
    rows = list(
        HitItem.objects.filter(hit_id=hit_id, hit__worker=worker)
        .select_related("hit__campaign")
        .select_for_update(of=("hit",))
        .annotate(gold_present=Case(When(is_gold=True, then=Subquery(truth)), default=Value(None)))
        .order_by("id")
    )
    if not rows:
        return None, {}
    return rows[0].hit, {item.id: item for item in rows}


def hit_submit(*, worker: User, hit_id: int, answers: list[dict], idempotency_key: str) -> SubmitResult:
    """Record a worker's answers to exactly the items of their open HIT, once.

    A retry with the same idempotency key returns the first result and writes nothing. Everything else
    (foreign or unknown HIT, expired lease, missing or extra items, bad values, a second submission with
    a new key) raises an AnnotationError and changes nothing."""
    if not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 64:
        raise AnnotationError("idempotency_key must be a string of 8 to 64 characters, new for each submission.")
    with transaction.atomic():
        # Lock only the HIT row: locking the campaign too would block every scheduler inserting a HIT.
        hit, items = _locked_hit(worker=worker, hit_id=hit_id)
        if hit is None:
            raise NotFound(f"You have no HIT {hit_id}.")
        if hit.status == Hit.Status.SUBMITTED:
            if hit.idempotency_key == idempotency_key:
                return _result(hit, replayed=True)
            raise Conflict(f"HIT {hit.id} was already submitted.")
        if hit.status == Hit.Status.EXPIRED or hit.expires_at <= timezone.now():
            raise Gone(f"The lease on HIT {hit.id} expired; its images went back to the queue. Ask for a new HIT.")
        parsed = _parse_answers(hit, items, answers)
        gold_correct = _record(hit, parsed)
        deferred = rollups.deferred()
        hit.status = Hit.Status.SUBMITTED
        hit.submitted_at = timezone.now()
        hit.idempotency_key = idempotency_key
        hit.rollup_pending = deferred
        for name, value in rollups.hit_figures(parsed, gold_correct).items():
            setattr(hit, name, value)
        hit.save(update_fields=["status", "submitted_at", "idempotency_key", "rollup_pending", *rollups.FIGURES])
        if deferred:
            # The dashboard rollups are added by a flush task after commit: in this transaction they would
            # serialise every submit on the campaign's bucket rows.
            transaction.on_commit(rollups.flush_request)
        else:
            rollups.hits_add([rollups.hit_row(hit)])  # eager Celery (no broker): at once, in this transaction
        from annotation import tasks

        candidate_ids = [item.candidate_id for item, _, _ in parsed if not item.is_gold]
        transaction.on_commit(lambda: tasks.consensus_update.delay(candidate_ids))
        return _result(hit, answers=len(parsed))


def _result(hit: Hit, *, answers: int | None = None, replayed: bool = False) -> SubmitResult:
    if answers is None:  # a replay: HITs submitted before Hit.answers existed count their votes
        answers = hit.answers or Vote.objects.filter(hit=hit).count()
    return SubmitResult(hit_id=hit.id, answers=answers, earned=str(hit.campaign.reward_per_hit), replayed=replayed)


def _record(hit: Hit, parsed: list[tuple[HitItem, int, int]]) -> int:
    """Write the votes and move every counter they touch; returns how many gold items were answered right."""
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
    if real:
        # Lock the candidates in id order before updating them: concurrent submits over overlapping
        # candidates then queue up instead of deadlocking (the consensus job locks in the same order).
        ids = [c for c, _ in real]
        list(Candidate.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id"))
        voted = [cid for cid, answer in real if answer != Vote.Answer.CANT_TELL]
        yes = [cid for cid, answer in real if answer == Vote.Answer.PRESENT]
        # One UPDATE for all: a vote counts and awaits consensus (priority < 0, see _needs_votes); "can't
        # tell" is recorded but is no vote either way, its lease is simply returned.
        Candidate.objects.filter(id__in=ids).update(
            votes_count=F("votes_count") + Case(When(id__in=voted, then=Value(1)), default=Value(0)),
            yes_count=F("yes_count") + Case(When(id__in=yes, then=Value(1)), default=Value(0)),
            pending_count=F("pending_count") - 1,
            priority=Case(When(id__in=voted, then=Value(AWAITING_CONSENSUS)), default=F("priority")),
        )
        if voted:
            CampaignSynset.objects.filter(campaign_id=hit.campaign_id, synset_id=hit.synset_id).update(
                votes=F("votes") + len(voted)
            )
    gold_answers = [(item, answer) for item, answer, _ in parsed if item.is_gold]
    gold_correct = sum(answer == int(item.gold_present) for item, answer in gold_answers)
    profile = {
        "hits_done": F("hits_done") + 1,
        "answers": F("answers") + len(parsed),
        "gold_answered": F("gold_answered") + len(gold_answers),
        "gold_correct": F("gold_correct") + gold_correct,
        "answer_ms_total": F("answer_ms_total") + sum(ms for _, _, ms in parsed),
    }
    if not WorkerProfile.objects.filter(user_id=worker_id).update(**profile):
        WorkerProfile.objects.get_or_create(user_id=worker_id)
        WorkerProfile.objects.filter(user_id=worker_id).update(**profile)
    LedgerEntry.objects.create(
        worker_id=worker_id, kind=LedgerEntry.Kind.HIT, amount=hit.campaign.reward_per_hit, hit=hit
    )
    return gold_correct
