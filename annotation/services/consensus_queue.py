"""Consensus after submits, coalesced: one drain weighs every HIT submitted since the last one.

A submit marks its HIT ``consensus_pending`` in the UPDATE that marks it submitted (and its voted candidates
"awaiting consensus", a negative priority, see hits.py). After commit it asks for a drain (``drain_request``):
a Celery task is queued only when none is queued yet — a Redis key set with NX, which the drain deletes as it
starts, so a HIT committed while a drain runs queues the next one. The drain (``hits_drain``) reads the pending
HITs through the partial index ``hit_consensus_pending`` and, for all of them at once, recomputes their
candidates (consensus.candidates_update, in id order, a few hundred per transaction), screens their
submitters for spam (screening.hits_screen_batch) and clears their flags. Under load one job then serves many
HITs, and its fixed costs (the policies, the worker parameters, the refit check, a dozen statements) are paid
once per drain instead of once per HIT; at a trickle it is one HIT per drain, as before.

Why nothing is lost or done twice wrongly:
- every step is idempotent (recomputed from stored votes; a blocked worker is not screened again), and a HIT's
  flag is cleared only after its candidates were recomputed and its submitter screened: a drain that dies
  (SIGKILL, lost connection) leaves the flag, and the next drain — or the periodic sweep (tasks.consensus_sweep,
  which drains before it sweeps marked candidates) — does the work again;
- drains run one at a time (a Redis lock with a timeout, so a killed holder blocks others for at most
  LOCK_SECONDS; released only by its holder, so a drain that outran it does not delete the next one's); a
  drain that finds the lock held leaves, and the holder looks for pending HITs once more after releasing it,
  so a HIT committed meanwhile is not stranded;
- the flag is written in the submit's transaction, so a broker or Redis outage at commit loses only the
  request for a drain, never the work: the sweep finds the flag.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache
from redis.exceptions import RedisError

from annotation.models import Hit, HitItem
from annotation.services import consensus, screening
from config.cache import lock_release, lock_token

QUEUED_KEY = "consensus:drain-queued"
LOCK_KEY = "consensus:draining"
# How long a request holds back the next one if no drain starts meanwhile (its message lost, the worker busy
# with a refit): at most one drain per second is then queued, each weighing whatever is pending when it runs.
# Web and Celery processes must share the cache namespace (settings.CACHE_KEY_PREFIX): the drain deletes this
# key as it starts, which is what lets a HIT committed during a drain queue the next one.
QUEUED_SECONDS = 1
LOCK_SECONDS = 60
# HITs read per round, and how long one drain keeps taking rounds before it leaves the rest to the next
# (a solo Celery worker also runs the refits and the rollup flushes).
DRAIN_BATCH_HITS = 200
DRAIN_SECONDS = 5.0
# Candidates recomputed per transaction: their row locks hold back submits that vote on them meanwhile.
CANDIDATES_PER_TRANSACTION = 240

logger = logging.getLogger(__name__)


@dataclass
class Drained:
    hits: int = 0
    candidates: int = 0
    campaign_ids: set[int] = field(default_factory=set)
    blocked: dict[int, str] = field(default_factory=dict)
    skipped: bool = False  # another drain held the lock


def drain_request() -> None:
    """After a submit commits: queue a drain unless one is queued already. A Redis or broker outage is
    logged, not raised (the submit is stored; the periodic sweep drains its HIT)."""
    from annotation import tasks

    try:
        if not cache.add(QUEUED_KEY, 1, QUEUED_SECONDS):
            return
    except RedisError as error:
        logger.warning("Could not request a consensus drain (%s); the periodic sweep will do its work.", error)
        return
    if tasks.consensus_drain.delay() is None:  # the broker is down (QueuedAfterCommit logged it)
        _forget(QUEUED_KEY)


def _forget(key: str) -> None:
    try:
        cache.delete(key)
    except RedisError as error:  # the key expires by itself
        logger.warning("Could not delete %s (%s).", key, error)


def _unlock(key: str, token: int) -> None:
    try:
        lock_release(key, token)  # only if still ours: a drain that outran LOCK_SECONDS leaves the next one's
    except RedisError as error:  # the key expires by itself
        logger.warning("Could not release %s (%s).", key, error)


def hits_drain(
    *,
    batch: int = DRAIN_BATCH_HITS,
    seconds: float = DRAIN_SECONDS,
    after_round: Callable[[set[int]], None] | None = None,
) -> Drained:
    """Weigh the pending HITs (oldest first, ``batch`` per round, rounds for at most ``seconds``); see the
    module docstring. ``after_round`` is called with the campaigns of each round's HITs once they are weighed
    (the refit check: under load one drain takes many rounds, and a refit due after the first should not wait
    for the last). Returns what it did; ``skipped`` when another drain was running."""
    _forget(QUEUED_KEY)  # from here on a committed submit queues the next drain
    drained = Drained()
    token = lock_token()
    try:
        locked = cache.add(LOCK_KEY, token, LOCK_SECONDS)
    except RedisError as error:  # drain unlocked: every step is idempotent
        logger.warning("Consensus drain without its lock (%s).", error)
        locked = None
    if locked is False:
        drained.skipped = True
        return drained
    started = time.monotonic()
    more = False
    try:
        while True:
            hits = list(
                Hit.objects.filter(consensus_pending=True)
                .order_by("id")
                .values_list("id", "worker_id", "campaign_id")[:batch]
            )
            if hits:
                _weigh(hits, drained)
                if after_round is not None:
                    after_round({campaign_id for _, _, campaign_id in hits})
            more = len(hits) == batch
            if not more or time.monotonic() - started >= seconds:
                break
    finally:
        if locked:
            _unlock(LOCK_KEY, token)
    # A drain that found the lock held left its HITs to this one: look once more now that it is released.
    if more or Hit.objects.filter(consensus_pending=True).exists():
        drain_request()
    return drained


def _weigh(hits: list[tuple[int, int, int]], drained: Drained) -> None:
    campaign_of = {hit_id: campaign_id for hit_id, _, campaign_id in hits}
    candidates: dict[int, list[int]] = defaultdict(list)
    by_campaign: dict[int, set[int]] = defaultdict(set)
    for hit_id, candidate_id in HitItem.objects.filter(hit_id__any=list(campaign_of), is_gold=False).values_list(
        "hit_id", "candidate_id"
    ):
        candidates[hit_id].append(candidate_id)
        by_campaign[campaign_of[hit_id]].add(candidate_id)
    for ids in by_campaign.values():  # candidates_update takes one campaign's candidates
        ordered = sorted(ids)
        for start in range(0, len(ordered), CANDIDATES_PER_TRANSACTION):
            consensus.candidates_update(candidate_ids=ordered[start : start + CANDIDATES_PER_TRANSACTION])
        drained.candidates += len(ordered)
    drained.blocked.update(
        screening.hits_screen_batch(
            hits=[
                screening.SubmittedHit(worker_id, campaign_id, candidates.get(hit_id, []))
                for hit_id, worker_id, campaign_id in hits
            ]
        )
    )
    Hit.objects.filter(id__any=list(campaign_of)).update(consensus_pending=False)
    drained.hits += len(hits)
    drained.campaign_ids.update(campaign_of.values())
