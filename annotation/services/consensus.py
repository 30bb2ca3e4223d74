"""Consensus in the database: after each HIT, recompute the touched candidates' posteriors from all
their votes with the current worker parameters, then apply the stopping rule (annotation/consensus/)."""

from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F

from annotation.consensus import item_effect, item_posteriors, item_states, vote_value
from annotation.consensus.stopping import ItemState
from annotation.models import CampaignSynset, Candidate, Vote
from annotation.rows import column_in, fetch
from workers.models import WorkerProfile

MODEL_VERSION = "incremental-3"
# Accuracy assumed for a worker the model knows nothing about yet: better than chance, far from perfect.
DEFAULT_ACCURACY = 0.8
MAX_UNKNOWN_ACCURACY = 0.9
# A worker no refit has seen yet is judged by the gold answers in their HITs so far (recorded at submit),
# shrunk toward the crowd's pooled worker with this many pseudo-answers: 3 of 3 gold right moves a
# 0.88 crowd to 0.91, 12 of 12 to 0.95; 1 of 3 right drops it to 0.75. Capped at MAX_GOLD_ACCURACY.
UNKNOWN_GOLD_PSEUDO_ANSWERS = 10
MAX_GOLD_ACCURACY = 0.95
# Rejecting needs P(absent) >= min(confidence, REJECT_CONFIDENCE); accepting needs P(present) >= confidence.
# A wrong accept costs precision, the figure a dataset is judged by; a wrong reject costs one image of
# recall, which the synset's other candidates make up. On the simulator's worker models (an offline Monte
# Carlo, 70% positives) accepting at 0.999 and rejecting at 0.95 instead of 0.999 saves ~0.2 votes per
# candidate for the same precision.
REJECT_CONFIDENCE = 0.95
# Hysteresis: a decided candidate keeps its decision while its posterior stays within this many nats
# (log-odds) of the bar, so that a refit's re-estimated worker parameters do not reopen candidates by a
# hair (each reopening buys a vote) — e.g. accepted at 0.999 stays accepted down to 0.9973. Votes of a
# blocked worker stop counting, which moves a posterior by far more than this, so spam still reopens.
KEEP_DECISION_NATS = 1.0
POOLED_TTL_SECONDS = 7 * 24 * 3600
STATE_OF = {
    ItemState.VOTING: Candidate.State.VOTING,
    ItemState.ACCEPTED: Candidate.State.ACCEPTED,
    ItemState.REJECTED: Candidate.State.REJECTED,
    ItemState.UNRESOLVED: Candidate.State.UNRESOLVED,
}
COUNTED = {
    Candidate.State.ACCEPTED: "accepted",
    Candidate.State.REJECTED: "rejected",
    Candidate.State.UNRESOLVED: "unresolved",
}


def _confusion(sensitivity: np.ndarray, specificity: np.ndarray) -> np.ndarray:
    """Binary confusion matrices C[w, true, answer] (0 = absent, 1 = present), clipped away from 0 and 1
    so that no single vote is ever treated as certain."""
    se = np.clip(sensitivity, 0.01, 0.995)
    sp = np.clip(specificity, 0.01, 0.995)
    return np.stack([np.stack([sp, 1 - sp], axis=-1), np.stack([1 - se, se], axis=-1)], axis=1)


def _pooled_key(campaign_id: int) -> str:
    return f"consensus:pooled:{campaign_id}"


def pooled_confusion_set(*, campaign_id: int, sensitivity: float, specificity: float) -> None:
    """Remember the campaign's answer-weighted mean worker (written by each refit). A worker who joined
    since the last refit is assumed to be like the crowd so far, rather than a fixed DEFAULT_ACCURACY:
    in a young campaign most voters are new, and a too-low guess costs every candidate an extra vote or
    two (crowd simulator: 0.8 vs a measured ≈ 0.9). Kept in the cache (shared by all Celery workers under
    Redis); when it is missing, DEFAULT_ACCURACY applies."""
    cache.set(_pooled_key(campaign_id), (float(sensitivity), float(specificity)), POOLED_TTL_SECONDS)


def _unknown_worker(campaign_id: int | None) -> tuple[float, float]:
    pooled = cache.get(_pooled_key(campaign_id)) if campaign_id is not None else None
    if not pooled:
        return DEFAULT_ACCURACY, DEFAULT_ACCURACY
    # Never more trusting than a worker the refit measured at 0.9; never less than the default.
    return tuple(float(np.clip(v, DEFAULT_ACCURACY, MAX_UNKNOWN_ACCURACY)) for v in pooled)


def _gold_shrunk(pooled: float, correct: int, answered: int) -> float:
    """Posterior mean accuracy from a worker's gold record, the pooled accuracy as a Beta prior."""
    k = UNKNOWN_GOLD_PSEUDO_ANSWERS
    return min(MAX_GOLD_ACCURACY, (correct + k * pooled) / (answered + k))


def _worker_confusions(worker_ids: list[int], campaign_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each worker's confusion from the last refit (a worker no refit has seen yet gets the campaign's pooled
    one, see pooled_confusion_set, moved by their gold answers so far), and a weight that is 0 for blocked
    workers so their votes stop counting."""
    names = ("user_id", "sensitivity", "specificity", "blocked", "gold_answered", "gold_correct")
    where, params = column_in("user_id", worker_ids)
    # Written SQL (prepared on PostgreSQL): every consensus update and screen reads these rows.
    profiles = {
        row[0]: dict(zip(names, row, strict=True))
        for row in fetch(
            f"SELECT {', '.join(names)} FROM {connection.ops.quote_name(WorkerProfile._meta.db_table)} WHERE {where}",
            params,
        )
    }
    known = [profiles.get(w, {}) for w in worker_ids]
    new_se, new_sp = _unknown_worker(campaign_id)
    gold = [(p.get("gold_correct") or 0, p.get("gold_answered") or 0) for p in known]
    se = np.array([p.get("sensitivity") or _gold_shrunk(new_se, *g) for p, g in zip(known, gold, strict=True)])
    sp = np.array([p.get("specificity") or _gold_shrunk(new_sp, *g) for p, g in zip(known, gold, strict=True)])
    weights = np.array([0.0 if p.get("blocked") else 1.0 for p in known])
    return _confusion(se, sp), weights


def kinds_stored(shares: np.ndarray) -> dict:
    """A synset's ``(2, len(item_effect.SHIFTS))`` shares as CampaignSynset.item_kinds keeps them (see kind_shares)."""
    return {
        "shifts": list(item_effect.SHIFTS),
        "absent": [round(float(x), 6) for x in shares[0]],
        "present": [round(float(x), 6) for x in shares[1]],
    }


def kind_shares(stored: dict | None) -> np.ndarray | None:
    """A synset's shares of kinds of image as the last refit stored them (CampaignSynset.item_kinds), as a
    ``(2, len(item_effect.SHIFTS))`` array; None when there are none, or when they were fitted on another grid
    of shifts (an older version: plain posteriors until the next refit)."""
    if not stored or list(stored.get("shifts", ())) != list(item_effect.SHIFTS):
        return None
    return np.array([stored["absent"], stored["present"]], dtype=np.float64)


def thresholds(campaign) -> tuple[float, float]:
    """(accept, reject) bars of a campaign: P(present) to accept, P(absent) to reject."""
    return campaign.confidence, min(campaign.confidence, REJECT_CONFIDENCE)


def _keep_bar(threshold: float) -> float:
    logit = np.log(threshold / (1 - threshold)) - KEEP_DECISION_NATS
    return float(1 / (1 + np.exp(-logit)))


def decide(p_present, counted, campaign, typical, current=None, cast=None) -> tuple[np.ndarray, np.ndarray]:
    """Stopping rule and priority (annotation.consensus.item_states / vote_value) with the campaign's
    asymmetric bars, and the hysteresis of KEEP_DECISION_NATS for candidates ``current``ly decided (an
    array of Candidate.State values, or None). Returns (ItemState codes, priorities).

    ``counted`` are the votes that count (a blocked worker's do not); ``cast`` (Candidate.votes_count, or
    None) all votes given. max_votes is a budget of votes cast, the one the scheduler leases by: a candidate
    still undecided once it has cast max_votes is unresolved, even where some of them no longer count. (QA:
    28 candidates with 6 of 6 votes cast, a blocked worker's among them, stayed "voting" for good: the
    scheduler would not lease them again and the rule, counting 5, would not call them unresolved.) A
    researcher who wants more votes on them raises max_votes."""
    p = np.asarray(p_present, dtype=np.float64)
    n = np.asarray(counted)
    accept, reject = thresholds(campaign)
    limits = {"min_votes": campaign.min_votes, "max_votes": campaign.max_votes}
    codes = item_states(p, n, threshold=accept, **limits)
    codes[(item_states(p, n, threshold=reject, **limits) == ItemState.REJECTED) & (codes != ItemState.ACCEPTED)] = (
        ItemState.REJECTED
    )
    if current is not None:
        current = np.asarray(current, dtype=object)
        enough = n >= campaign.min_votes
        keep_accept = enough & (current == Candidate.State.ACCEPTED) & (p >= _keep_bar(accept))
        keep_reject = enough & (current == Candidate.State.REJECTED) & (1 - p >= _keep_bar(reject))
        codes[keep_accept] = ItemState.ACCEPTED
        codes[keep_reject] = ItemState.REJECTED
    value = np.maximum(
        vote_value(p, n, typical, threshold=accept, **limits), vote_value(p, n, typical, threshold=reject, **limits)
    )
    if cast is not None:
        codes[(codes == ItemState.VOTING) & (np.asarray(cast) >= campaign.max_votes)] = ItemState.UNRESOLVED
    priority = np.where(codes == ItemState.VOTING, value, 0.0)
    return codes, priority


@dataclass(frozen=True)
class Evaluation:
    """What the incremental model makes of one candidate's stored votes."""

    state: str
    posterior: float
    priority: float


def _evaluate(candidates: list[Candidate]) -> tuple[dict[int, Evaluation], dict[int, CampaignSynset]]:
    """Evaluate these candidates (all of one campaign) from all their votes with the current worker
    parameters; candidates outside a running or paused campaign, or under a researcher's accept/reject
    override, are left out. Reads only."""
    policies = {
        cs.synset_id: cs
        for cs in CampaignSynset.objects.filter(
            synset_id__in={c.synset_id for c in candidates}, campaign__state__in=["running", "paused"]
        ).select_related("campaign")
    }
    where, params = column_in("candidate_id", [c.id for c in candidates])
    votes = fetch(
        f"SELECT candidate_id, worker_id, answer FROM {connection.ops.quote_name(Vote._meta.db_table)} "
        f"WHERE {where} AND NOT is_gold AND answer < 2",
        params,
    )
    worker_ids = sorted({w for _, w, _ in votes})
    campaign_id = next(iter(policies.values())).campaign_id if policies else None
    confusion, weights = _worker_confusions(worker_ids, campaign_id)
    local = {c.id: i for i, c in enumerate(candidates)}
    worker_index = {w: i for i, w in enumerate(worker_ids)}
    items = np.array([local[c] for c, _, _ in votes], dtype=np.intp)
    workers = np.array([worker_index[w] for _, w, _ in votes], dtype=np.intp)
    labels = np.array([a for _, _, a in votes], dtype=np.intp)
    prior = next(iter(policies.values())).campaign.prior_present if policies else 0.5
    class_prior = np.array([1 - prior, prior])
    by_synset = {synset_id: kind_shares(policy.item_kinds) for synset_id, policy in policies.items()}
    kinds = [by_synset.get(c.synset_id) for c in candidates]
    if any(k is not None for k in kinds):
        # The synset's look-alikes (item_effect.py): agreement on one image counts for less where images
        # that fool most workers at once are common.
        neutral = item_effect.neutral_shares(1)[0]
        shares = np.stack([neutral if k is None else k for k in kinds])
        loglik = item_effect.kind_log_likelihood(
            items, workers, labels, len(candidates), confusion, worker_weights=weights
        )
        posterior = item_effect.posteriors(loglik, shares, class_prior)[:, 1]
    else:
        posterior = item_posteriors(
            items, workers, labels, len(candidates), confusion, class_prior, worker_weights=weights
        )[:, 1]
    counted = np.bincount(items, weights=weights[workers], minlength=len(candidates)).round().astype(int)
    overridden = overridden_ids(c.id for c in candidates)
    evaluations = {}
    if not policies:
        return evaluations, policies
    # One campaign: its stopping rule runs once over the whole batch.
    typical = _confusion(np.array([DEFAULT_ACCURACY]), np.array([DEFAULT_ACCURACY]))[0]
    campaign = next(iter(policies.values())).campaign
    codes, priorities = decide(
        posterior, counted, campaign, typical, [c.state for c in candidates], [c.votes_count for c in candidates]
    )
    for i, candidate in enumerate(candidates):
        if candidate.synset_id not in policies or candidate.id in overridden:
            continue
        state = STATE_OF[ItemState(int(codes[i]))]
        if state == Candidate.State.VOTING and candidate.state == Candidate.State.NEW and counted[i] == 0:
            state = Candidate.State.NEW
        evaluations[candidate.id] = Evaluation(
            state=state, posterior=float(posterior[i]), priority=float(priorities[i])
        )
    return evaluations, policies


def candidates_update(*, candidate_ids: list[int]) -> dict[str, int]:
    """Recompute state, posterior and priority of these candidates (of one campaign). Idempotent and
    order-independent: the result depends only on the votes stored, not on how often this runs."""
    changes: Counter = Counter()
    with transaction.atomic():
        candidates = list(Candidate.objects.select_for_update().filter(id__any=candidate_ids).order_by("id"))
        if not candidates:
            return {}
        evaluations, policies = _evaluate(candidates)
        for candidate in candidates:
            evaluation = evaluations.get(candidate.id)
            if evaluation is None:
                # Under a researcher's override, which stands whatever the votes say, or outside any running
                # or paused campaign (a HIT leased before its campaign finished and submitted after): the mark
                # that votes await consensus is cleared all the same, or nothing would ever clear it (chaos
                # QA: the candidate stayed "awaiting consensus" for good).
                candidate.priority = max(candidate.priority, 0.0)
                continue
            policy = policies[candidate.synset_id]
            state = evaluation.state
            if candidate.state != state:
                if candidate.state in COUNTED:
                    changes[(policy.id, COUNTED[candidate.state])] -= 1
                if state in COUNTED:
                    changes[(policy.id, COUNTED[state])] += 1
            candidate.state = state
            candidate.posterior = evaluation.posterior
            candidate.priority = evaluation.priority
            candidate.model_version = MODEL_VERSION
        candidates_write(candidates)
        counters_move(changes)
    return {f"{field}": delta for (_, field), delta in changes.items()}


def counters_move(changes: Counter) -> None:
    """Add ``changes[(campaign synset id, "accepted" | "rejected" | "unresolved")]`` to the per-synset counters
    of that campaign and of every other campaign over the same synset, in the caller's transaction (the
    candidates whose states moved are locked there). A candidate is one per (image, synset), shared by every
    campaign over its synset, so each campaign's counters are the states of the synset's candidates: moved for
    one campaign only, another campaign's fell behind its synset page and went below zero on its next override
    (QA: an IntegrityError, a 500). The rows are locked in id order first (two campaigns' jobs move the same
    rows), then one UPDATE joined to arrays on PostgreSQL, whatever the number of synsets."""
    moved = {key: delta for key, delta in changes.items() if delta}
    if not moved:
        return
    ids = sorted({policy_id for policy_id, _ in moved})
    fields = ("accepted", "rejected", "unresolved")
    table = connection.ops.quote_name(CampaignSynset._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT t.id FROM {table} t JOIN {table} src ON src.synset_id = t.synset_id "
                "WHERE src.id = ANY(%s::bigint[]) ORDER BY t.id FOR UPDATE OF t",
                [ids],
            )
            cursor.fetchall()
            cursor.execute(
                f"UPDATE {table} SET accepted = {table}.accepted + v.a, rejected = {table}.rejected + v.r, "
                f"unresolved = {table}.unresolved + v.u FROM unnest(%s::bigint[], %s::integer[], %s::integer[], "
                f"%s::integer[]) AS v(id, a, r, u) JOIN {table} src ON src.id = v.id "
                f"WHERE {table}.synset_id = src.synset_id",
                [ids, *([moved.get((i, f), 0) for i in ids] for f in fields)],
            )
        return
    synset_of = dict(CampaignSynset.objects.filter(id__in=ids).values_list("id", "synset_id"))
    for policy_id in ids:
        CampaignSynset.objects.filter(synset_id=synset_of[policy_id]).update(
            **{f: F(f) + moved[(policy_id, f)] for f in fields if (policy_id, f) in moved}
        )


def candidates_write(candidates: list[Candidate]) -> None:
    """State, posterior, priority and model version of these (locked) candidates in one UPDATE joined to a
    VALUES list (the refit's writes too): Django's bulk_update builds a CASE per field and row, which was ~40%
    of a consensus job's Python (benchmarks/hit_cpu.py) and ~97% of a refit's."""
    if not candidates:
        return
    table = connection.ops.quote_name(Candidate._meta.db_table)
    if connection.vendor == "postgresql":
        # Five array parameters, however many rows: psycopg parses a statement of more than 50 parameters anew
        # on every call (annotation/lookups.py).
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET state = v.state, posterior = v.posterior, priority = v.priority, "
                "model_version = v.model_version FROM unnest(%s::bigint[], %s::text[], %s::double precision[], "
                f"%s::double precision[], %s::text[]) AS v(id, state, posterior, priority, model_version) "
                f"WHERE {table}.id = v.id",
                [
                    [c.id for c in candidates],
                    [c.state for c in candidates],
                    [c.posterior for c in candidates],
                    [c.priority for c in candidates],
                    [c.model_version for c in candidates],
                ],
            )
        return
    rows = ", ".join(["(%s, %s, CAST(%s AS DOUBLE PRECISION), CAST(%s AS DOUBLE PRECISION), %s)"] * len(candidates))
    params = [v for c in candidates for v in (c.id, c.state, c.posterior, c.priority, c.model_version)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v(id, state, posterior, priority, model_version) AS (VALUES {rows}) "
            f"UPDATE {table} SET state = v.state, posterior = v.posterior, priority = v.priority, "
            f"model_version = v.model_version FROM v WHERE {table}.id = v.id",
            params,
        )


def candidates_recompute(*, candidate_ids: list[int]) -> dict[int, Evaluation]:
    """A from-scratch evaluation of these candidates (of one campaign) from their stored votes, written
    nowhere: what candidates_update would store now. The fault tests compare it with what is stored."""
    return _evaluate(list(Candidate.objects.filter(id__in=candidate_ids).order_by("id")))[0]


# Candidates recomputed per transaction by the sweep.
SWEEP_BATCH = 500


def candidates_awaiting_update(*, batch: int = SWEEP_BATCH, synset_ids: list[int] | None = None) -> int:
    """Recompute every candidate whose latest votes no consensus update has weighed: hit_submit marks a
    voted candidate with a negative priority and candidates_update clears the mark, so a mark that stays
    means the update was lost (broker down at commit, Redis restarted, worker killed). Until it is weighed
    the scheduler does not lease the candidate again and the refit leaves it alone. Synset by synset of the
    running and paused campaigns, through the candidate_awaiting partial index (only marked rows), in
    batches of ``batch``; returns how many candidates it recomputed. ``synset_ids``: only those synsets (a
    campaign about to finish, campaigns.campaign_set_state)."""
    if synset_ids is None:
        synset_ids = (
            CampaignSynset.objects.filter(campaign__state__in=["running", "paused"])
            .values_list("synset_id", flat=True)
            .distinct()
        )
    swept = 0
    for synset_id in synset_ids:
        after = 0
        while ids := list(
            Candidate.objects.filter(synset_id=synset_id, priority__lt=0, id__gt=after)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        ):
            candidates_update(candidate_ids=ids)
            swept, after = swept + len(ids), ids[-1]
    return swept


def overridden_ids(candidate_ids) -> set[int]:
    """Candidates whose latest researcher override is accept or reject: consensus leaves their state alone
    (a later "reopen" override hands them back). A written query, the latest override per candidate picked
    here: it runs in every consensus job, where building the ORM's correlated subquery cost more CPU than
    running it (benchmarks/hit_cpu.py)."""
    from annotation.models import DecisionOverride

    where, params = column_in("candidate_id", list(candidate_ids))
    latest: dict[int, str] = {}
    table = connection.ops.quote_name(DecisionOverride._meta.db_table)
    for candidate_id, action in fetch(f"SELECT candidate_id, action FROM {table} WHERE {where} ORDER BY id", params):
        latest[candidate_id] = action
    held = {DecisionOverride.Action.ACCEPT, DecisionOverride.Action.REJECT}
    return {candidate_id for candidate_id, action in latest.items() if action in held}


def synsets_of(candidate_ids: list[int]) -> list[int]:
    return list(Candidate.objects.filter(id__in=candidate_ids).values_list("synset_id", flat=True).distinct())


def pooled_confusion_forget(*, campaign_id: int) -> None:
    cache.delete(_pooled_key(campaign_id))
