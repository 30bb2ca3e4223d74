"""The scheduler and HIT submission (see scheduler.md in this folder)."""

import functools
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import NamedTuple

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Forbidden, Gone, NotFound
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, HitItem, Vote
from annotation.rows import column_in, instance_by_id, instance_insert
from annotation.services import consensus, consensus_queue, leases, quiz, rollups, screening
from annotation.services.answers import answers_read
from annotation.services.draws import draw_rng
from taxonomy.models import Synset
from workers.models import LedgerEntry, Qualification, WorkerProfile

# How many of the campaign's synsets (furthest behind first) one request tries before saying "no work".
SYNSETS_TRIED = 25
# Priority of a candidate whose newest votes the consensus job has not weighed yet (see _needs_votes).
AWAITING_CONSENSUS = -1.0
ANSWERS = {"absent": Vote.Answer.ABSENT, "present": Vote.Answer.PRESENT, "cant_tell": Vote.Answer.CANT_TELL}


def _open_states() -> list[str]:
    return [Candidate.State.NEW, Candidate.State.VOTING]


def qualification_require(*, worker: User, campaign: Campaign) -> Qualification:
    qualification = Qualification.objects.filter(worker=worker, campaign=campaign).first()
    _check_qualification(qualification.status if qualification else None, worker.id, campaign.id)
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


def _lease_queryset(*, campaign, worker_id: int, synset_id: int):
    seen = HitItem.objects.filter(worker_id=worker_id, candidate_id=OuterRef("pk"))
    # Gold is excluded with NOT EXISTS rather than a LEFT JOIN … IS NULL: the join made PostgreSQL hash the
    # whole gold table and sort the synset's every open candidate (2.5 ms at 10^6 rows); the anti join walks
    # the candidate_queue index in order and stops after `size` rows (0.07 ms).
    is_gold = GoldItem.objects.filter(candidate_id=OuterRef("pk"))
    return (
        Candidate.objects.filter(_needs_votes(campaign), synset_id=synset_id)
        .exclude(Exists(is_gold))
        .exclude(Exists(seen))
        .order_by("-priority", "id")
    )


# The PostgreSQL lease statement, compiled once per process and HIT size: building and compiling the queryset
# above cost about 2 ms of Python per next-HIT for the same SQL every time. It is compiled from
# _lease_queryset itself, with stand-in values that mark where each argument goes among the parameters
# (within the columns' ranges: Django drops a comparison with an out-of-range integer as never true).
_LEASE_SLOTS = {30_001: "synset_id", 30_002: "worker_id", 30_003: "min_votes", 30_004: "max_votes"}
_lease_statements: dict[int, tuple[str, list[tuple[str | None, object]]]] = {}


def _lease_statement(size: int) -> tuple[str, list[tuple[str | None, object]]]:
    """(SQL, parameters as (slot name or None, value)) of UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
    LOCKED) RETURNING id. Must be called inside a transaction (select_for_update compiles only there)."""
    if size not in _lease_statements:
        slot = {name: value for value, name in _LEASE_SLOTS.items()}
        stand_in = SimpleNamespace(min_votes=slot["min_votes"], max_votes=slot["max_votes"])
        queryset = _lease_queryset(campaign=stand_in, worker_id=slot["worker_id"], synset_id=slot["synset_id"])
        select_sql, select_params = (
            queryset.select_for_update(skip_locked=True, of=("self",)).values("id")[:size].query.sql_with_params()
        )
        params = [
            (_LEASE_SLOTS.get(p) if isinstance(p, int) and not isinstance(p, bool) else None, p)
            for p in [Candidate.State.NEW.value, Candidate.State.VOTING.value, *select_params]
        ]
        if {name for name, _ in params if name} != set(_LEASE_SLOTS.values()):
            raise AssertionError(f"The lease query lost an argument: {params!r}")
        table = connection.ops.quote_name(Candidate._meta.db_table)
        sql = (
            f"UPDATE {table} SET pending_count = pending_count + 1, "
            "state = CASE WHEN state = %s THEN %s ELSE state END "
            f"WHERE id IN ({select_sql}) RETURNING id"
        )
        _lease_statements[size] = (sql, params)
    return _lease_statements[size]


def _lease_candidates(*, worker: User, campaign: Campaign, synset_id: int, size: int) -> list[int]:
    if connection.vendor == "postgresql":
        # One round trip: UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING id.
        # Concurrent schedulers skip rows another transaction is leasing instead of waiting on them;
        # PostgreSQL re-checks the WHERE clause on a row that changed since the statement's snapshot, so
        # counts stay within the need.
        sql, params = _lease_statement(size)
        values = {
            "synset_id": synset_id,
            "worker_id": worker.id,
            "min_votes": campaign.min_votes,
            "max_votes": campaign.max_votes,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, [value if name is None else type(value)(values[name]) for name, value in params])
            return [row[0] for row in cursor.fetchall()]
    # SQLite: transactions are IMMEDIATE (writers serialised), so read then update needs no row locks.
    queryset = _lease_queryset(campaign=campaign, worker_id=worker.id, synset_id=synset_id)
    ids = list(queryset.values_list("id", flat=True)[:size])
    if ids:
        voting = Case(When(state=Candidate.State.NEW, then=Value(Candidate.State.VOTING)), default=F("state"))
        Candidate.objects.filter(id__in=ids).update(pending_count=F("pending_count") + 1, state=voting)
    return ids


def _gold_for(*, worker: User, synset_id: int, count: int, rng: random.Random) -> list[int]:
    """``count`` gold items of the synset this worker has never been shown, drawn with ``rng`` from the first
    500 by candidate id (a stable order, so the seeded draw repeats)."""
    if count <= 0:
        return []
    q = connection.ops.quote_name
    sql = (
        f"SELECT g.candidate_id FROM {q(GoldItem._meta.db_table)} g WHERE g.synset_id = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {q(HitItem._meta.db_table)} s WHERE s.worker_id = %s AND s.candidate_id = g.candidate_id) "
        "ORDER BY g.candidate_id LIMIT 500"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [synset_id, worker.id])
        pool = [row[0] for row in cursor.fetchall()]
    return rng.sample(pool, min(count, len(pool)))


_need_cache: dict[tuple, tuple[float, list[list[tuple[int, list[int]]]]]] = {}
NEED_CACHE_SECONDS = 2.0
_open_cache: dict[tuple, tuple[float, frozenset[int]]] = {}
OPEN_CACHE_SECONDS = 30.0


def _open_synsets(campaign: Campaign, key: tuple, now: float) -> frozenset[int]:
    """The campaign's synsets that have open candidates, read at most every OPEN_CACHE_SECONDS per process: the
    read costs more than the accepted counts' (PostgreSQL, 20,000 synsets and 40,000 open candidates: 60 ms, a
    semi-join over the open candidates), and a synset whose images arrived since is still tried after these."""
    cached = _open_cache.get(key)
    if cached is None or now - cached[0] >= OPEN_CACHE_SECONDS:
        has_open = Candidate.objects.filter(synset_id=OuterRef("synset_id"), state__in=_open_states())
        synsets = CampaignSynset.objects.filter(campaign=campaign).filter(Exists(has_open))
        ids = frozenset(synsets.values_list("synset_id", flat=True))
        if len(_open_cache) > 1000:
            _open_cache.clear()
        _open_cache[key] = cached = (now, ids)
    return cached[1]


def _synsets_by_need(campaign: Campaign, rng: random.Random) -> list[int]:
    """Furthest behind the target first (fewest accepted), ties broken at random so that concurrent
    workers spread over synsets instead of all contending for one; a synset that has reached its target gets
    no more votes (its still undecided candidates stay open until the target is raised). Synsets with open
    candidates come before those without: in a campaign of thousands of synsets where only some have images
    yet, a random 25 of the furthest behind were mostly synsets without any, and workers were told there was no
    work while a dozen synsets waited for votes (exploratory QA: 15 next-HIT requests, 15 "no work", on a
    2,958-synset campaign with 24 open candidates). The rest still follow, in case images arrived since the
    last read. The synsets are read at most every NEED_CACHE_SECONDS per process (accepted counts move slowly;
    reading a campaign's 1,000 rows on every request cost a query and a millisecond of Python), kept grouped by
    accepted count, lowest first; a request then draws its SYNSETS_TRIED at random from the first groups
    (shuffling all 1,000 per request cost 1,000 random draws for 25 synsets)."""
    now = time.monotonic()
    key = (campaign.id, campaign.created)  # ids come back after a rollback on SQLite (tests)
    cached = _need_cache.get(key)
    if cached is None or now - cached[0] >= NEED_CACHE_SECONDS:
        open_ids = _open_synsets(campaign, key, now)
        by_accepted: list[dict[int, list[int]]] = [{}, {}]  # synsets with open candidates, then without
        for synset_id, accepted in CampaignSynset.objects.filter(campaign=campaign).values_list(
            "synset_id", "accepted"
        ):
            by_accepted[0 if synset_id in open_ids else 1].setdefault(accepted, []).append(synset_id)
        if len(_need_cache) > 1000:
            _need_cache.clear()
        groups = [[(a, part[a]) for a in sorted(part)] for part in by_accepted]
        _need_cache[key] = cached = (now, groups)
    chosen: list[int] = []
    for groups in cached[1]:
        for accepted, group in groups:
            if accepted >= campaign.target_per_synset:
                break  # groups go by accepted count, lowest first: the rest are done too
            # random.sample of a whole group is a shuffled copy; of part of it, a uniformly drawn ordered subset.
            chosen += rng.sample(group, min(len(group), SYNSETS_TRIED - len(chosen)))
            if len(chosen) >= SYNSETS_TRIED:
                return chosen
    return chosen


def _passed_synsets_by_need(*, worker: User, campaign: Campaign) -> list[int]:
    """In a campaign with a quiz per synset: the synsets whose quiz this worker passed, furthest behind the
    target first."""
    passed = quiz.passed_synset_ids(worker_id=worker.id, campaign_id=campaign.id)
    return list(
        CampaignSynset.objects.filter(campaign=campaign, synset_id__in=passed, accepted__lt=campaign.target_per_synset)
        .order_by("accepted", "synset_id")
        .values_list("synset_id", flat=True)
    )


def _check_qualification(status: str | None, worker_id: int, campaign_id: int) -> None:
    if status is None or status == Qualification.Status.TRIAL:
        raise Forbidden("Pass this campaign's qualification quiz before labelling.")
    if status == Qualification.Status.BLOCKED:
        raise quiz.blocked_error(worker_id=worker_id, campaign_id=campaign_id)


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
        cached = _synset_cache[synset_id] = (now, instance_by_id(Synset, synset_id))
    return cached[1]


def hit_next(*, worker: User, campaign: Campaign) -> Hit | None:
    """The worker's open HIT in this campaign, or a new one leased from the synset furthest behind its
    target; None when nothing is left for this worker."""
    if campaign.state != Campaign.State.RUNNING:
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running.")
    found = _qualification_and_hits(worker_id=worker.id, campaign_id=campaign.id)
    _check_qualification(found[0] if found else None, worker.id, campaign.id)
    if found[3] >= screening.LAGGING_OWN_HITS and screening.worker_screen(
        worker_id=worker.id, campaign=campaign, own_hits=found[3], quick=True
    ):  # the drain that screens submitters lags this worker's HITs: screened here (screening.LAGGING_OWN_HITS)
        raise quiz.blocked_error(worker_id=worker.id, campaign_id=campaign.id)
    _expire_now_and_then()
    now = timezone.now()
    if found[1] is not None:
        existing = instance_by_id(Hit, found[1])
        if existing is not None and existing.status == Hit.Status.OPEN:
            if existing.expires_at > now and leases.restored(existing, lease_seconds=campaign.lease_seconds, now=now):
                return existing
            _expire_one(existing.id)
    hit = _lease_hit(worker=worker, campaign=campaign, now=now, ordinal=found[2] or 0)
    if hit is None and hits_expire(limit=500):
        # Nothing open for this worker, but expired leases were holding items back: try once more.
        hit = _lease_hit(worker=worker, campaign=campaign, now=now, ordinal=found[2] or 0)
    if hit is None and campaign.quiz_per_synset and quiz.next_synset_to_qualify(worker=worker, campaign=campaign):
        raise Forbidden(
            "The synsets whose quiz you passed have no images left for you: take the quiz of another synset "
            "of this campaign to go on."
        )
    if hit is not None:
        hit.synset = _synset(hit.synset_id)
    return hit


def hit_release(*, worker: User, hit_id: int) -> bool:
    """The worker's page closed (or is reloading) with this HIT unanswered: its images go back to the queue a
    minute later unless the worker asks for it again meanwhile (services/leases.py)."""
    return leases.give_back(Hit, worker=worker, lease_id=hit_id, missing=f"You have no HIT {hit_id}.")


def _qualification_and_hits(*, worker_id: int, campaign_id: int) -> tuple | None:
    """(qualification status, the open HIT's id or None, HITs this worker was leased in the campaign — the
    ordinal that seeds this lease's draws, services/draws.py —, their submitted HITs still awaiting a consensus
    drain), or None without a qualification: one query, written out (compiling the ORM's version cost about a
    millisecond of Python per request)."""
    q = connection.ops.quote_name
    hits = q(Hit._meta.db_table)
    sql = (
        f"SELECT status, (SELECT id FROM {hits} WHERE worker_id = %s AND campaign_id = %s AND status = %s LIMIT 1), "
        f"(SELECT COUNT(*) FROM {hits} WHERE worker_id = %s AND campaign_id = %s), "
        f"(SELECT COUNT(*) FROM {hits} WHERE worker_id = %s AND campaign_id = %s AND consensus_pending) "
        f"FROM {q(Qualification._meta.db_table)} WHERE worker_id = %s AND campaign_id = %s LIMIT 1"
    )
    params = [worker_id, campaign_id, Hit.Status.OPEN.value, *[worker_id, campaign_id] * 3]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


# At most this many candidates awaiting consensus are weighed by one next-HIT request (see _lease_hit).
AWAITING_WEIGHED_PER_REQUEST = 48


def _lease_hit(*, worker: User, campaign: Campaign, now, ordinal: int) -> Hit | None:
    """A HIT from the first of the synsets (furthest behind first) that has candidates for this worker. When
    none has, but some of their candidates only wait for consensus to weigh their latest votes, this request
    weighs a few of them itself (the consensus job's own idempotent update) and tries again: otherwise the
    worker is told there is no work whenever the consensus job lags (a refit running, a busy Celery worker).
    In the crowd simulator on a noisy crowd (80% noisy workers, 800 of them, 300 images per synset) 345
    next-HIT requests found no work while 1,669-1,988 candidates were open, nearly all awaiting a drain held
    up by an 18-second refit, and 46 workers left for good. Leasing the awaiting candidates unweighed instead
    kept the workers but bought votes their decisions no longer needed (default crowd: 0.67 of fixed-5's
    votes; weighing first, 0.52)."""
    rng = draw_rng("hit", worker.id, campaign.id, ordinal)
    synsets = (
        _passed_synsets_by_need(worker=worker, campaign=campaign)
        if campaign.quiz_per_synset
        else _synsets_by_need(campaign, rng)
    )
    hit = _lease_from(worker=worker, campaign=campaign, now=now, ordinal=ordinal, rng=rng, synsets=synsets)
    if hit is None and synsets and _weigh_awaiting(worker=worker, campaign=campaign, synsets=synsets):
        hit = _lease_from(worker=worker, campaign=campaign, now=now, ordinal=ordinal, rng=rng, synsets=synsets)
    return hit


def _weigh_awaiting(*, worker: User, campaign: Campaign, synsets: list[int]) -> int:
    """Weigh up to AWAITING_WEIGHED_PER_REQUEST candidates of these synsets that this worker could be given
    once weighed (open, no outstanding lease, never shown to the worker) and whose latest votes consensus has
    not weighed yet. Their HITs stay marked for the drain, which weighs them again (the same result) and
    screens their submitters. Returns how many were weighed."""
    seen = HitItem.objects.filter(worker_id=worker.id, candidate_id=OuterRef("pk"))
    ids = list(
        Candidate.objects.filter(synset_id__in=synsets, priority__lt=0, pending_count=0, state__in=_open_states())
        .exclude(Exists(seen))
        .order_by("id")
        .values_list("id", flat=True)[:AWAITING_WEIGHED_PER_REQUEST]
    )
    if ids:
        consensus.candidates_update(candidate_ids=ids)
    return len(ids)


def _lease_from(*, worker: User, campaign: Campaign, now, ordinal: int, rng, synsets: list[int]) -> Hit | None:
    for synset_id in synsets:
        try:
            with transaction.atomic():
                gold_rate = screening.hit_gold_rate(campaign, ordinal, worker.id)  # more for newcomers
                # At least one real candidate per HIT: a newcomer's gold rate of 0.5 on a small HIT would now and
                # then draw gold for every slot (6 images: 1.6% of HITs), leaving nothing to lease.
                n_gold = min(
                    sum(rng.random() < gold_rate for _ in range(campaign.images_per_hit)), campaign.images_per_hit - 1
                )
                real = _lease_candidates(
                    worker=worker, campaign=campaign, synset_id=synset_id, size=campaign.images_per_hit - n_gold
                )
                if not real:
                    continue
                gold = _gold_for(worker=worker, synset_id=synset_id, count=n_gold, rng=rng)
                hit = instance_insert(
                    Hit(
                        campaign=campaign,
                        synset=_synset(synset_id),
                        worker=worker,
                        expires_at=now + timedelta(seconds=campaign.lease_seconds),
                    )
                )
                items = [(cid, False) for cid in real] + [(cid, True) for cid in gold]
                rng.shuffle(items)
                _insert_items(hit=hit, items=items)
                return hit
        except IntegrityError:
            # Another request of the same worker opened a HIT in this campaign meanwhile: return that one.
            existing = Hit.objects.filter(worker=worker, campaign=campaign, status=Hit.Status.OPEN).first()
            if existing is not None:
                return existing
            raise
    return None


def _insert_items(*, hit: Hit, items: list[tuple[int, bool]]) -> None:
    """The HIT's items, in the given order, with one plain INSERT (bulk_create's HitItem instances cost more
    than the statement). A candidate this worker was leased before violates hititem_worker_candidate."""
    q = connection.ops.quote_name
    columns = ("hit_id", "worker_id", "candidate_id", "position", "is_gold")
    if connection.vendor == "postgresql":
        # Arrays, not a VALUES row per item: psycopg re-parses every statement of more than 50 parameters.
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {q(HitItem._meta.db_table)} ({', '.join(q(c) for c in columns)}) "
                "SELECT %s, %s, c, p - 1, g FROM unnest(%s::bigint[], %s::boolean[]) WITH ORDINALITY AS t(c, g, p)",
                [hit.id, hit.worker_id, [c for c, _ in items], [g for _, g in items]],
            )
        return
    row = f"({', '.join(['%s'] * len(columns))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(HitItem._meta.db_table)} ({', '.join(q(c) for c in columns)}) "
            f"VALUES {', '.join([row] * len(items))}",
            [
                value
                for position, (candidate_id, is_gold) in enumerate(items)
                for value in (hit.id, hit.worker_id, candidate_id, position, is_gold)
            ],
        )


@dataclass(frozen=True)
class SubmitResult:
    hit_id: int
    answers: int
    earned: str
    replayed: bool = False


class _Item(NamedTuple):
    """What submit needs of a leased item (read as values: HitItem instances cost more than the rest of the
    parsing)."""

    candidate_id: int
    is_gold: bool
    gold_present: bool | None


def _parse_answers(hit: Hit, items: dict[int, _Item], answers: list[dict]) -> list[tuple[_Item, int, int]]:
    read = answers_read(answers, items=items, choices=ANSWERS, unit=f"HIT {hit.id}")
    return [(items[item_id], answer, ms) for item_id, answer, ms, _ in read]


def _locked_hit(*, worker: User, hit_id: int) -> tuple[Hit | None, Decimal, dict[int, _Item]]:
    """The worker's HIT, its row locked (SELECT … FOR UPDATE OF the HIT), its campaign's reward and its items
    (gold ones with their known answer), in one query read as plain values; (None, 0, {}) when the worker has
    no such HIT. (Reading HitItem instances joined to their HIT and campaign built 72 model instances per
    submit, most of its Python time; on PostgreSQL the statement is written out, see _locked_hit_sql.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_locked_hit_sql(), [hit_id, worker.id])
            rows = cursor.fetchall()
    else:
        rows = _locked_hit_rows(worker=worker, hit_id=hit_id)
    if not rows:
        return None, Decimal(0), {}
    status, key, expires_at, campaign_id, synset_id, answers, reward = rows[0][:7]
    hit = Hit(
        id=hit_id,
        worker_id=worker.id,
        campaign_id=campaign_id,
        synset_id=synset_id,
        status=status,
        idempotency_key=key,
        expires_at=expires_at,
        answers=answers,
    )
    items = {row[7]: _Item(row[8], row[9], row[10]) for row in rows if row[7] is not None}
    return hit, reward, items


def _locked_hit_rows(*, worker: User, hit_id: int) -> list[tuple]:
    return list(
        Hit.objects.filter(id=hit_id, worker=worker)
        .select_for_update(of=("self",))
        .order_by("items__id")
        .values_list(
            "status",
            "idempotency_key",
            "expires_at",
            "campaign_id",
            "synset_id",
            "answers",
            "campaign__reward_per_hit",
            "items__id",
            "items__candidate_id",
            "items__is_gold",
            "items__candidate__gold__present",
        )
    )


@functools.cache
def _locked_hit_sql() -> str:
    """_locked_hit_rows's query as PostgreSQL SQL (the same joins and order), written once per process:
    compiling the ORM's version (four joins, FOR UPDATE OF) cost more Python per submit than the rest of it.
    The gold answer is read by the item's candidate id directly (GoldItem.candidate is unique)."""
    q = connection.ops.quote_name
    return (
        f"SELECT h.status, h.idempotency_key, h.expires_at, h.campaign_id, h.synset_id, h.answers, "
        f"c.reward_per_hit, i.id, i.candidate_id, i.is_gold, g.present "
        f"FROM {q(Hit._meta.db_table)} h "
        f"JOIN {q(Campaign._meta.db_table)} c ON c.id = h.campaign_id "
        f"LEFT JOIN {q(HitItem._meta.db_table)} i ON i.hit_id = h.id "
        f"LEFT JOIN {q(GoldItem._meta.db_table)} g ON g.candidate_id = i.candidate_id "
        f"WHERE h.id = %s AND h.worker_id = %s ORDER BY i.id FOR UPDATE OF h"
    )


def hit_submit(*, worker: User, hit_id: int, answers: list[dict], idempotency_key: str) -> SubmitResult:
    """Record a worker's answers to exactly the items of their open HIT, once.

    A retry with the same idempotency key returns the first result and writes nothing. Everything else
    (foreign or unknown HIT, expired lease, missing or extra items, bad values, a second submission with
    a new key) raises an AnnotationError and changes nothing."""
    if not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 64:
        raise AnnotationError("idempotency_key must be a string of 8 to 64 characters, new for each submission.")
    with transaction.atomic():
        # Lock only the HIT row: locking the campaign too would block every scheduler inserting a HIT.
        hit, reward, items = _locked_hit(worker=worker, hit_id=hit_id)
        if hit is None:
            raise NotFound(f"You have no HIT {hit_id}.")
        if hit.status == Hit.Status.SUBMITTED:
            if hit.idempotency_key == idempotency_key:
                _same_answers_or_conflict(hit, items, answers)
                return _result(hit, reward, replayed=True)
            raise Conflict(f"HIT {hit.id} was already submitted.")
        if hit.status == Hit.Status.EXPIRED or hit.expires_at <= timezone.now():
            raise Gone(f"The lease on HIT {hit.id} expired; its images went back to the queue. Ask for a new HIT.")
        parsed = _parse_answers(hit, items, answers)
        gold_correct = sum(answer == int(item.gold_present) for item, answer, _ in parsed if item.is_gold)
        deferred = rollups.deferred()
        hit.status = Hit.Status.SUBMITTED
        hit.submitted_at = timezone.now()
        hit.idempotency_key = idempotency_key
        hit.rollup_pending = deferred
        hit.consensus_pending = True  # until a consensus drain has weighed its votes (consensus_queue.py)
        for name, value in rollups.hit_figures(parsed, gold_correct).items():
            setattr(hit, name, value)
        if connection.vendor == "postgresql":
            _record_in_one_statement(hit, reward, parsed, gold_correct)
        else:
            _record(hit, reward, parsed, gold_correct)
            hit.save(update_fields=list(_HIT_SUBMIT_FIELDS))
        if deferred:
            # The dashboard rollups are added by a flush task after commit: in this transaction they would
            # serialise every submit on the campaign's bucket rows.
            transaction.on_commit(rollups.flush_request)
        else:
            rollups.hits_add([rollups.hit_row(hit)])  # eager Celery (no broker): at once, in this transaction
        # One drain weighs every HIT submitted since the last: queued after commit unless one is queued already.
        transaction.on_commit(consensus_queue.drain_request)
        return _result(hit, reward, answers=len(parsed))


def _same_answers_or_conflict(hit: Hit, items: dict[int, _Item], answers: list[dict]) -> None:
    """A replay carries the answers the key first carried (a retry of a lost response): otherwise the key was
    reused for something else, which must not look recorded. Response times are not compared."""
    try:
        sent = {item.candidate_id: answer for item, answer, _ in _parse_answers(hit, items, answers)}
    except AnnotationError:
        sent = None
    if sent != dict(Vote.objects.filter(hit_id=hit.id).values_list("candidate_id", "answer")):
        raise Conflict(
            f"This idempotency key already submitted HIT {hit.id} with other answers; those were recorded and stand."
        )


def _result(hit: Hit, reward: Decimal, *, answers: int | None = None, replayed: bool = False) -> SubmitResult:
    if answers is None:  # a replay: HITs submitted before Hit.answers existed count their votes
        answers = hit.answers or Vote.objects.filter(hit=hit).count()
    return SubmitResult(hit_id=hit.id, answers=answers, earned=str(reward), replayed=replayed)


_HIT_SUBMIT_FIELDS = (
    "status",
    "submitted_at",
    "idempotency_key",
    "rollup_pending",
    "consensus_pending",
    *rollups.FIGURES,
)


def _record_in_one_statement(
    hit: Hit, reward: Decimal, parsed: list[tuple[_Item, int, int]], gold_correct: int
) -> None:
    """PostgreSQL: what _record and the HIT's save write, as one statement of data-modifying CTEs — the votes,
    the candidates (locked in id order first, as the consensus drain locks them, so overlapping submits queue
    instead of deadlocking), the synset's vote counter, the worker's profile, the ledger entry and the HIT.
    Seven statements were seven round trips, each a wake-up of the database backend and of this thread (under
    load, a wait for the CPU and the GIL every time). Same rows and values as the SQLite path below.

    Order: PostgreSQL runs a statement's CTEs in no promised order, and the 64-worker concurrency test
    deadlocked (a submit held its synset's counter row and waited for a candidate another submit held, which
    waited for that counter). The rows are taken in the SQLite path's order by the final SELECT: each of its
    scalar subqueries runs its CTE to the end, left to right — candidates, synset counter, profile, ledger,
    HIT. The votes insert locks no existing row."""
    q = connection.ops.quote_name
    real = [(item.candidate_id, answer) for item, answer, _ in parsed if not item.is_gold]
    voted = [cid for cid, answer in real if answer != Vote.Answer.CANT_TELL]
    gold_answered = sum(item.is_gold for item, _, _ in parsed)
    now = timezone.now()
    vote_columns = ", ".join(
        q(c) for c in ("candidate_id", "worker_id", "hit_id", "answer", "response_ms", "is_gold", "created")
    )
    hit_columns = ", ".join(f"{q(name)} = %(hit_{name})s" for name in _HIT_SUBMIT_FIELDS)
    sql = f"""
        WITH votes AS (
            INSERT INTO {q(Vote._meta.db_table)} ({vote_columns})
            SELECT c, %(worker)s, %(hit)s, a, ms, g, %(now)s
            FROM unnest(%(items)s::bigint[], %(answers)s::smallint[], %(ms)s::integer[], %(gold)s::boolean[])
                AS t(c, a, ms, g)
        ), locked AS MATERIALIZED (
            SELECT id FROM {q(Candidate._meta.db_table)} WHERE id = ANY(%(real)s::bigint[]) ORDER BY id FOR UPDATE
        ), candidates AS (
            UPDATE {q(Candidate._meta.db_table)} AS c
            SET votes_count = votes_count + CASE WHEN c.id = ANY(%(voted)s::bigint[]) THEN 1 ELSE 0 END,
                yes_count = yes_count + CASE WHEN c.id = ANY(%(yes)s::bigint[]) THEN 1 ELSE 0 END,
                pending_count = pending_count - 1,
                priority = CASE WHEN c.id = ANY(%(voted)s::bigint[]) THEN %(awaiting)s ELSE priority END
            FROM locked WHERE c.id = locked.id RETURNING 1
        ), synset AS (
            UPDATE {q(CampaignSynset._meta.db_table)} SET votes = votes + %(n_voted)s
            WHERE campaign_id = %(campaign)s AND synset_id = %(synset)s AND %(n_voted)s > 0 RETURNING 1
        ), ledger AS (
            INSERT INTO {q(LedgerEntry._meta.db_table)} (worker_id, kind, amount, hit_id, note, paid, created)
            VALUES (%(worker)s, %(kind)s, %(reward)s, %(hit)s, '', false, %(now)s) RETURNING 1
        ), hit AS (
            UPDATE {q(Hit._meta.db_table)} SET {hit_columns} WHERE id = %(hit)s RETURNING 1
        ), profile AS (
            UPDATE {q(WorkerProfile._meta.db_table)}
            SET hits_done = hits_done + 1, answers = answers + %(n_answers)s,
                gold_answered = gold_answered + %(gold_answered)s, gold_correct = gold_correct + %(gold_correct)s,
                answer_ms_total = answer_ms_total + %(ms_total)s
            WHERE user_id = %(worker)s RETURNING 1
        )
        SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM synset), (SELECT count(*) FROM profile),
            (SELECT count(*) FROM ledger), (SELECT count(*) FROM hit)"""
    params = {
        "worker": hit.worker_id,
        "hit": hit.id,
        "now": now,
        "items": [item.candidate_id for item, _, _ in parsed],
        "answers": [answer for _, answer, _ in parsed],
        "ms": [ms for _, _, ms in parsed],
        "gold": [item.is_gold for item, _, _ in parsed],
        "real": [cid for cid, _ in real],
        "voted": voted,
        "yes": [cid for cid, answer in real if answer == Vote.Answer.PRESENT],
        "awaiting": AWAITING_CONSENSUS,
        "n_voted": len(voted),
        "campaign": hit.campaign_id,
        "synset": hit.synset_id,
        "kind": LedgerEntry.Kind.HIT.value,
        "reward": reward,
        "n_answers": len(parsed),
        "gold_answered": gold_answered,
        "gold_correct": gold_correct,
        "ms_total": sum(ms for _, _, ms in parsed),
        **{f"hit_{name}": getattr(hit, name) for name in _HIT_SUBMIT_FIELDS},
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        profiles = cursor.fetchone()[2]
    if not profiles:  # a worker without a profile row (created lazily): make it, then count this HIT
        WorkerProfile.objects.get_or_create(user_id=hit.worker_id)
        WorkerProfile.objects.filter(user_id=hit.worker_id).update(
            hits_done=F("hits_done") + 1,
            answers=F("answers") + len(parsed),
            gold_answered=F("gold_answered") + gold_answered,
            gold_correct=F("gold_correct") + gold_correct,
            answer_ms_total=F("answer_ms_total") + params["ms_total"],
        )


def _record(hit: Hit, reward: Decimal, parsed: list[tuple[_Item, int, int]], gold_correct: int) -> None:
    """Write the votes and move every counter they touch (SQLite; PostgreSQL: _record_in_one_statement).

    The votes and the candidate counters are written with plain SQL (the same on PostgreSQL and SQLite):
    bulk_create's 24 Vote instances and the ORM's CASE … WHEN id IN … expressions were most of a submit's
    Python time."""
    worker_id = hit.worker_id
    q = connection.ops.quote_name
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    columns = ("candidate_id", "worker_id", "hit_id", "answer", "response_ms", "is_gold", "created")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # arrays: see _insert_items
            cursor.execute(
                f"INSERT INTO {q(Vote._meta.db_table)} ({', '.join(q(c) for c in columns)}) "
                "SELECT c, %s, %s, a, ms, g, %s "
                "FROM unnest(%s::bigint[], %s::smallint[], %s::integer[], %s::boolean[]) AS t(c, a, ms, g)",
                [
                    worker_id,
                    hit.id,
                    created,
                    [item.candidate_id for item, _, _ in parsed],
                    [answer for _, answer, _ in parsed],
                    [ms for _, _, ms in parsed],
                    [item.is_gold for item, _, _ in parsed],
                ],
            )
        else:
            row = f"({', '.join(['%s'] * len(columns))})"
            cursor.execute(
                f"INSERT INTO {q(Vote._meta.db_table)} ({', '.join(q(c) for c in columns)}) "
                f"VALUES {', '.join([row] * len(parsed))}",
                [
                    value
                    for item, answer, ms in parsed
                    for value in (item.candidate_id, worker_id, hit.id, answer, ms, item.is_gold, created)
                ],
            )
    real = [(item.candidate_id, answer) for item, answer, _ in parsed if not item.is_gold]
    if real:
        table = q(Candidate._meta.db_table)
        ids = [c for c, _ in real]
        voted = [cid for cid, answer in real if answer != Vote.Answer.CANT_TELL]
        yes = [cid for cid, answer in real if answer == Vote.Answer.PRESENT]
        where, where_params = column_in("id", ids)
        is_voted, voted_params = column_in("id", voted)
        is_yes, yes_params = column_in("id", yes)
        with connection.cursor() as cursor:
            if connection.features.has_select_for_update:
                # Lock the candidates in id order before updating them: concurrent submits over overlapping
                # candidates then queue up instead of deadlocking (the consensus job locks in the same order).
                cursor.execute(f"SELECT id FROM {table} WHERE {where} ORDER BY id FOR UPDATE", where_params)
                cursor.fetchall()
            # One UPDATE for all: a vote counts and awaits consensus (priority < 0, see _needs_votes); "can't
            # tell" is recorded but is no vote either way, its lease is simply returned.
            cursor.execute(
                f"UPDATE {table} SET votes_count = votes_count + CASE WHEN {is_voted} THEN 1 ELSE 0 END, "
                f"yes_count = yes_count + CASE WHEN {is_yes} THEN 1 ELSE 0 END, "
                "pending_count = pending_count - 1, "
                f"priority = CASE WHEN {is_voted} THEN %s ELSE priority END "
                f"WHERE {where}",
                [*voted_params, *yes_params, *voted_params, AWAITING_CONSENSUS, *where_params],
            )
        if voted:
            CampaignSynset.objects.filter(campaign_id=hit.campaign_id, synset_id=hit.synset_id).update(
                votes=F("votes") + len(voted)
            )
    gold_answers = [(item, answer) for item, answer, _ in parsed if item.is_gold]
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
    LedgerEntry.objects.create(worker_id=worker_id, kind=LedgerEntry.Kind.HIT, amount=reward, hit=hit)
