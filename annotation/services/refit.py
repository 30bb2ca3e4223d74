"""The periodic consensus refit of a campaign: Dawid–Skene with gold over all its votes, worker
reliabilities written to profiles, spammers blocked, every candidate re-evaluated.

Sizes: votes are streamed from the database (selectors.votes, STREAM_CHUNK rows at a time) into numpy
arrays (10^7 votes ≈ 250 MB of int64 arrays at peak); candidates are written back in batches of WRITE_BATCH rows.
"""

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, Count, Q, Sum, Value, When
from django.utils import timezone

from annotation.consensus import MODEL_VERSION, fit_consensus, item_effect
from annotation.consensus.stopping import ItemState
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Vote, WorkerAction
from annotation.rows import column_in, fetch
from annotation.selectors.votes import campaign_vote_arrays
from annotation.services import screening
from annotation.services.consensus import (
    COUNTED,
    candidates_update,
    candidates_write,
    counters_move,
    decide,
    kinds_stored,
    overridden_ids,
    pooled_confusion_set,
)
from workers.models import Qualification, WorkerProfile

# The campaign fields a refit decides candidates by: changing one makes the campaign due for a refit.
DECISION_POLICY = {"min_votes", "max_votes", "confidence"}

WRITE_BATCH = 2_000
# A worker is judged only after this many real answers (or gold answers) so that bad luck is not spam.
# The spam screen (annotation/services/screening.py: a likelihood-ratio test per HIT and at each refit)
# judges "at chance" HIT by HIT; the rule below catches answers that run against the images, and workers at
# chance once MIN_ANSWERS_AT_CHANCE answers make the model's estimate sure enough.
# At 30 answers and 0.2, and at 60 and 0.1, it blocked an honest noisy worker in 200-worker simulated crowds.
MIN_ANSWERS_TO_JUDGE = 60
MIN_GOLD_TO_JUDGE = 5
# "At chance" is measured by informedness (Youden's J = sensitivity + specificity - 1): 0 for a coin, for
# always-yes and for always-no alike, whose raw accuracy can look fine when one class dominates; 1 for a
# perfect worker, 0.8 for one right 90% of the time. Below this a worker's answers carry no signal.
# Two bars. After MIN_ANSWERS_TO_JUDGE answers, below -0.2: answers that run against the images
# (adversarial workers, ≈ -0.7). After MIN_ANSWERS_AT_CHANCE, below 0: a coin-flipper, whose estimate is
# below 0 about half the time. One bar of 0 at 60 answers blocked an honest noisy worker (true
# informedness ≈ 0.2, estimate -0.04; noisy crowd, seed 5, 2026-12): the estimate's spread at n answers
# (70% present) is ≈ sqrt(1.14 / n), 0.14 at 60 — at 240 it is 0.07 and an honest worker at 0.2 falls
# below 0 less than once in 300 refits.
BLOCK_BELOW_INFORMEDNESS = -0.2
MIN_ANSWERS_AT_CHANCE = 240
# 0.55, not 0.7: the noisiest honest simulated workers (accuracy ≈ 0.6, ≈ 0.55 on confusable negatives, which
# half the absent gold is) drew 10 of 27 gold right — p = 0.0003 against 0.7 — and were blocked (seed 1, 20%
# spam, 2026-12). Spammers are the per-HIT screen's work now; this rule is left for the plainly anti-informed.
GOLD_HONEST_ACCURACY = 0.55
GOLD_BLOCK_P_VALUE = 0.005
STATE_OF = {
    ItemState.VOTING: Candidate.State.VOTING,
    ItemState.ACCEPTED: Candidate.State.ACCEPTED,
    ItemState.REJECTED: Candidate.State.REJECTED,
    ItemState.UNRESOLVED: Candidate.State.UNRESOLVED,
}


@dataclass(frozen=True)
class RefitSummary:
    votes: int
    candidates: int
    workers: int
    source: str
    blocked: list[int]
    states: dict[str, int]


# A person's unblock stands against the automatic rules until the worker has given this many new answers in the
# campaign (gold included): the answers the block was based on were judged by that person, and judging the
# worker again needs as much new evidence as judging a newcomer does (MIN_ANSWERS_TO_JUDGE). QA: a researcher's
# unblock was reversed by the next refit, on the very answers the researcher had looked at.
ANSWERS_AFTER_UNBLOCK = MIN_ANSWERS_TO_JUDGE


def spared_after_unblock(*, campaign: Campaign, worker_ids: list[int] | None = None) -> set[int]:
    """The workers (of ``worker_ids``, or all) whose latest WorkerAction for this campaign — in it or everywhere —
    is a person's unblock, and who have given fewer than ANSWERS_AFTER_UNBLOCK answers in the campaign since
    it. Votes are append-only, so "since" compares their creation time with the unblock's."""
    # People's decisions: few rows, read whole (a list of the campaign's workers could be 10^4 SQL parameters).
    actions = WorkerAction.objects.filter(Q(campaign=campaign) | Q(campaign__isnull=True)).order_by("id")
    latest: dict[int, tuple[str, object]] = {}
    for worker_id, action, created in actions.values_list("worker_id", "action", "created"):
        latest[worker_id] = (action, created)
    if worker_ids is not None:
        latest = {w: latest[w] for w in set(worker_ids) & latest.keys()}
    return {
        worker_id
        for worker_id, (action, since) in latest.items()
        if action == WorkerAction.Action.UNBLOCK
        and Vote.objects.filter(worker_id=worker_id, hit__campaign=campaign, created__gt=since)[
            :ANSWERS_AFTER_UNBLOCK
        ].count()
        < ANSWERS_AFTER_UNBLOCK
    }


def _blocked_workers(campaign: Campaign) -> set[int]:
    return set(
        Qualification.objects.filter(campaign=campaign, status=Qualification.Status.BLOCKED).values_list(
            "worker_id", flat=True
        )
    ) | set(WorkerProfile.objects.filter(blocked=True).values_list("user_id", flat=True))


def _binomial_tail(correct: int, answered: int, p: float) -> float:
    """P(X <= correct) for X ~ Binomial(answered, p)."""
    return sum(math.comb(answered, k) * p**k * (1 - p) ** (answered - k) for k in range(correct + 1))


def _spammers(worker_ids: np.ndarray, confusion: np.ndarray, answers: np.ndarray) -> dict[int, str]:
    """{worker id: reason} of the workers the fit shows at or below chance, or whose gold score is implausible
    for an honest worker; the reason says which rule and the figure."""
    informedness = confusion[:, 1, 1] + confusion[:, 0, 0] - 1.0
    flagged = ((answers >= MIN_ANSWERS_TO_JUDGE) & (informedness < BLOCK_BELOW_INFORMEDNESS)) | (
        (answers >= MIN_ANSWERS_AT_CHANCE) & (informedness < 0.0)
    )
    reasons = {
        int(w): f"Answers no better than chance (model: informedness {j:.2f})."
        for w, j in zip(worker_ids[flagged], informedness[flagged], strict=True)
    }
    # Gold decides only when the score is implausible for an honest but noisy worker: a one-sided binomial
    # test against GOLD_HONEST_ACCURACY. A plain "below 50% after 5 answers" rule blocked a 78%-accurate
    # simulated worker who had 2 of 5 right (a 2.5% event that a 30-worker crowd meets regularly).
    for p in WorkerProfile.objects.filter(user_id__in=worker_ids.tolist(), gold_answered__gte=MIN_GOLD_TO_JUDGE):
        if _binomial_tail(p.gold_correct, p.gold_answered, GOLD_HONEST_ACCURACY) < GOLD_BLOCK_P_VALUE:
            reasons.setdefault(
                p.user_id, f"Answers no better than chance (gold: {p.gold_correct} of {p.gold_answered})."
            )
    return reasons


def _screened(result, codes, work, answer, cand, bar: float = 0.0) -> dict[int, str]:
    """annotation.services.screening's tests over every worker, with this fit's posteriors (gold clamped to
    its truth) as the reference: answers independent of the images, below the campaign's accuracy ``bar``
    (Campaign.min_worker_accuracy, when > 0), inhuman speed."""
    worker_ids, candidate_ids, gold_mask, _ = codes
    item = np.searchsorted(candidate_ids, cand)
    reference = result.posteriors[item, 1]
    # Gold (clamped) always; a candidate when confident and voted on by the worker and at least
    # REFERENCE_MIN_OTHER_VOTES others (these posteriors include the worker's own vote).
    votes = np.bincount(item, minlength=len(candidate_ids))
    sure = (np.abs(reference - 0.5) >= screening.REFERENCE_MARGIN) & (
        gold_mask[item] | (votes[item] > screening.REFERENCE_MIN_OTHER_VOTES)
    )
    worker_of = np.searchsorted(worker_ids, work[sure])
    llr = screening.spam_log_lr(worker_of, answer[sure], reference[sure], len(worker_ids))
    enough = np.bincount(worker_of, minlength=len(worker_ids)) >= screening.MIN_REFERENCE_ANSWERS
    reasons = {
        int(w): f"Answers independent of the images (spam model ahead by {x:.1f} nats)."
        for w, x, ok in zip(worker_ids, llr, enough, strict=True)
        if ok and x >= screening.SPAM_LOG_LR
    }
    if bar > 0:
        # The bar's test on the same confident references (these posteriors include the worker's own vote,
        # which leans them to agree with it: the refit is the milder judge; the per-HIT screen, on the other
        # votes alone, the sharper).
        below = screening.spam_log_lr(worker_of, answer[sure], reference[sure], len(worker_ids), floor=bar)
        counts = np.bincount(worker_of, minlength=len(worker_ids))
        # The guard (screening.gold_agrees_below_bar): the worker's gold answers alone must not clear them.
        gold = gold_mask[item]
        gold_of = np.searchsorted(worker_ids, work[gold])
        on_gold = screening.spam_log_lr(gold_of, answer[gold], reference[gold], len(worker_ids), floor=bar)
        gold_counts = np.bincount(gold_of, minlength=len(worker_ids))
        for w, x, n, g, ng in zip(worker_ids, below, counts, on_gold, gold_counts, strict=True):
            guarded = ng >= screening.ACCURACY_MIN_GOLD and g > screening.ACCURACY_GOLD_FLOOR
            if n >= screening.ACCURACY_MIN_ANSWERS and x >= screening.ACCURACY_LOG_LR and guarded:
                reasons.setdefault(
                    int(w),
                    f"Answers no better than chance, against this campaign's least accuracy of {bar:.2f} "
                    f"(chance ahead by {x:.1f} nats).",
                )
    # The speed test's fast band (screening.fast_trial) on the same confident references.
    fast = screening.spam_log_lr(worker_of, answer[sure], reference[sure], len(worker_ids), floor=screening.FAST_FLOOR)
    looks = {int(w): screening.looking(x) for w, x in zip(worker_ids, fast, strict=True)}
    looks = {w: v for w, v in looks.items() if v is not None}
    return {**screening.speed_suspects(worker_ids.tolist(), looks), **reasons}


def worker_block(*, worker_id: int, campaign: Campaign, reason: str) -> None:
    """Blocked in ``campaign`` with ``reason`` (kept on that campaign's qualification). The profile's flag says
    "blocked somewhere": consensus drops such a worker's votes in every campaign (a spammer found in one is
    not trusted in another), and its reason is the latest block's."""
    WorkerProfile.objects.update_or_create(
        user_id=worker_id, defaults={"blocked": True, "blocked_reason": reason[:200]}
    )
    Qualification.objects.update_or_create(
        worker_id=worker_id,
        campaign=campaign,
        defaults={"status": Qualification.Status.BLOCKED, "blocked_reason": reason[:200]},
    )


def worker_unblock(*, worker_id: int, campaign: Campaign) -> None:
    """A researcher's decision: the worker's votes count again from the next refit on — unless another campaign
    still blocks them (the profile keeps "blocked somewhere", with that block's reason)."""
    Qualification.objects.filter(worker_id=worker_id, campaign=campaign).update(
        status=Qualification.Status.QUALIFIED, blocked_reason=""
    )
    elsewhere = (
        Qualification.objects.filter(worker_id=worker_id, status=Qualification.Status.BLOCKED)
        .order_by("-updated")
        .values_list("blocked_reason", flat=True)
        .first()
    )
    WorkerProfile.objects.filter(user_id=worker_id).update(
        blocked=elsewhere is not None, blocked_reason=elsewhere or ""
    )


def campaign_refit(*, campaign_id: int) -> RefitSummary:
    """Refit the worker-aware model on all the campaign's votes and re-evaluate every candidate.

    Blocks workers the fit shows to be at chance (after MIN_ANSWERS_TO_JUDGE answers), who fail gold
    badly, or whom the spam screen (annotation/services/screening.py) flags with this fit's posteriors as
    reference, then fits again without their votes, so the candidates they touched are re-evaluated and
    reopened if they no longer meet the threshold. A worker a person unblocked (for this campaign or
    everywhere) is left alone until they give ANSWERS_AFTER_UNBLOCK new answers in the campaign
    (spared_after_unblock); their votes count meanwhile. Idempotent: the result depends only on stored votes
    and people's block decisions.
    """
    campaign = Campaign.objects.get(id=campaign_id)
    cand, work, answer, is_gold = campaign_vote_arrays(campaign=campaign)
    newly_blocked: list[int] = []
    spared = spared_after_unblock(campaign=campaign, worker_ids=np.unique(work).tolist())
    for _round in range(2):
        keep = ~np.isin(work, np.fromiter(_blocked_workers(campaign), dtype=np.int64))
        result, codes = _fit(cand[keep], work[keep], answer[keep], is_gold[keep])
        if result is None:
            break
        worker_ids, candidate_ids, gold_mask, counted = codes
        model = result.model
        _write_workers(worker_ids, model, result.labels, codes, cand[keep], work[keep], answer[keep], is_gold[keep])
        reasons = _spammers(worker_ids, model.confusion, model.worker_answers)
        reasons.update(_screened(result, codes, work[keep], answer[keep], cand[keep], campaign.min_worker_accuracy))
        spam = [w for w in sorted(reasons) if w not in newly_blocked and w not in spared]
        if not spam:
            break
        for worker_id in spam:
            worker_block(worker_id=worker_id, campaign=campaign, reason=reasons[worker_id])
        newly_blocked.extend(spam)
    _reevaluate_orphans(cand, keep, is_gold)
    if result is None:
        return RefitSummary(0, 0, 0, "none", newly_blocked, {})
    p_present = _item_kinds(campaign, result, codes, cand[keep], work[keep], answer[keep])
    states = _write_candidates(campaign, result, p_present, candidate_ids, gold_mask, counted)
    campaign.prior_present = float(result.model.class_prior[1])
    campaign.model_version = f"{MODEL_VERSION}/{result.source}"
    # Real votes only, as campaign_refit_due counts them (CampaignSynset.votes): with the gold answers counted
    # too (a third of all answers in the demo, more for newcomers) the next refit waited for ~1.7 times the
    # real votes instead of 1.1, and a young campaign went most of its life on unmeasured workers.
    # Only if the decision policy is still the one this refit read: a researcher who changed it meanwhile marked
    # the campaign due (votes_at_refit 0) and queued a refit, and storing the count here cleared that mark — with
    # the queued refit lost, or finished before this one, the old policy's decisions stayed.
    same_policy = Q(**{field: getattr(campaign, field) for field in sorted(DECISION_POLICY)})
    campaign.votes_at_refit = int((~is_gold).sum())
    campaign.refitted = timezone.now()
    Campaign.objects.filter(id=campaign.id).update(
        prior_present=campaign.prior_present, model_version=campaign.model_version, refitted=campaign.refitted,
        votes_at_refit=Case(When(same_policy, then=Value(campaign.votes_at_refit)), default=Value(0)),
    )  # fmt: skip
    return RefitSummary(
        votes=int(keep.sum()),
        candidates=int((~gold_mask).sum()),
        workers=len(worker_ids),
        source=result.source,
        blocked=newly_blocked,
        states=states,
    )


def _reevaluate_orphans(cand: np.ndarray, keep: np.ndarray, is_gold: np.ndarray) -> None:
    """Candidates whose every vote came from blocked workers are absent from the fit, so _write_candidates
    would leave them as they were — accepted on two copycats' say-so, say (the crowd simulator found
    exactly that). Recompute them on the incremental path, where blocked workers weigh 0: they go back
    to voting."""
    orphans = np.setdiff1d(cand[~keep & ~is_gold], cand[keep])
    if len(orphans):
        candidates_update(candidate_ids=orphans.tolist())


def _fit(cand, work, answer, is_gold):
    if len(cand) == 0:
        return None, None
    candidate_ids, items = np.unique(cand, return_inverse=True)
    worker_ids, workers = np.unique(work, return_inverse=True)
    gold_truth = dict(
        GoldItem.objects.filter(candidate_id__in=candidate_ids.tolist()).values_list("candidate_id", "present")
    )
    gold_mask = np.isin(candidate_ids, np.fromiter(gold_truth, dtype=np.int64))
    gold_items = np.flatnonzero(gold_mask)
    gold_labels = np.array([int(gold_truth[int(c)]) for c in candidate_ids[gold_items]], dtype=np.int64)
    # The guard falls back to majority vote when EM scores below it on gold by more than
    # GuardConfig.gold_tolerance_items (1.5). When even one gold item decided, the simulator saw a final refit
    # flip a whole campaign to majority (0.975 vs 0.9875 on 80 gold items) and reopen hundreds of settled
    # candidates; the failure the guard exists for (confusable negatives: EM 0.61 vs majority 0.72) is far
    # beyond one item.
    result = fit_consensus(
        items, workers, answer, len(candidate_ids), len(worker_ids), 2, gold_items=gold_items, gold_labels=gold_labels
    )
    counted = np.bincount(items[~is_gold], minlength=len(candidate_ids))
    return result, (worker_ids, candidate_ids, gold_mask, counted)


def _write_workers(worker_ids, model, labels, codes, cand, work, answer, is_gold) -> None:
    _, candidate_ids, _, _ = codes
    real = ~is_gold
    item_of = np.searchsorted(candidate_ids, cand[real])
    worker_of = np.searchsorted(worker_ids, work[real])
    agree = np.bincount(worker_of, weights=(answer[real] == labels[item_of]), minlength=len(worker_ids))
    total = np.bincount(worker_of, minlength=len(worker_ids))
    accuracy = model.worker_accuracy()
    profiles = {p.user_id: p for p in WorkerProfile.objects.filter(user_id__in=worker_ids.tolist())}
    missing = [int(w) for w in worker_ids if int(w) not in profiles]
    for p in WorkerProfile.objects.bulk_create([WorkerProfile(user_id=w) for w in missing]):
        profiles[p.user_id] = p
    for i, worker_id in enumerate(worker_ids.tolist()):
        profile = profiles[worker_id]
        profile.sensitivity = float(model.confusion[i, 1, 1])
        profile.specificity = float(model.confusion[i, 0, 0])
        profile.reliability = float(accuracy[i])
        profile.agreement = float(agree[i] / total[i]) if total[i] else None
    WorkerProfile.objects.bulk_update(
        profiles.values(), ["sensitivity", "specificity", "reliability", "agreement"], batch_size=WRITE_BATCH
    )


def _item_kinds(campaign, result, codes, cand, work, answer) -> np.ndarray:
    """Fit each synset's shares of kinds of image — typical ones and look-alikes that fool most workers at
    once (annotation/consensus/item_effect.py) — with this refit's worker confusions, store them on the
    campaign's synsets for the per-HIT updates, and return every fitted candidate's P(present) with its kind
    marginalised. Under the guard's majority-vote fallback, or before the campaign has item_effect.MIN_ITEMS
    images with two votes or more, the shares are cleared and the fit's posteriors kept."""
    worker_ids, candidate_ids, gold_mask, _ = codes
    items = np.searchsorted(candidate_ids, cand)
    n_votes = np.bincount(items, minlength=len(candidate_ids))
    if result.source != "em" or (n_votes >= 2).sum() < item_effect.MIN_ITEMS:
        # Nothing measured (too few images with two votes to tell kinds apart): the dashboard shows no figure,
        # and posteriors are plain Dawid–Skene's, as all mass on u = 0 would give.
        CampaignSynset.objects.filter(campaign=campaign).update(item_kinds=None)
        return result.posteriors[:, 1]
    # Every candidate of the campaign's synsets, by synset (a list of the fitted ids would be one SQL parameter
    # per candidate on SQLite); the fitted ones are then found by id.
    synsets = list(CampaignSynset.objects.filter(campaign=campaign).values_list("synset_id", flat=True))
    rows = Candidate.objects.filter(synset_id__any=synsets).values_list("id", "synset_id").order_by("id")
    table = np.fromiter((x for row in rows.iterator(chunk_size=WRITE_BATCH) for x in row), dtype=np.int64)
    table = table.reshape(-1, 2)
    synset_of = np.full(len(candidate_ids), -1)  # -1: not a candidate of this campaign's synsets (a group of its own)
    if len(table):
        at = np.minimum(np.searchsorted(table[:, 0], candidate_ids), len(table) - 1)
        found = table[at, 0] == candidate_ids
        synset_of[found] = table[at[found], 1]
    synset_ids, groups = np.unique(synset_of, return_inverse=True)
    gold_items = np.flatnonzero(gold_mask)
    gold_present = dict(
        GoldItem.objects.filter(candidate_id__any=candidate_ids[gold_items].tolist()).values_list(
            "candidate_id", "present"
        )
    )
    shares, posteriors = item_effect.fit_and_marginalise(
        items,
        np.searchsorted(worker_ids, work),
        answer,
        len(candidate_ids),
        result.model.confusion,
        result.model.class_prior,
        groups,
        len(synset_ids),
        gold_items=gold_items,
        gold_labels=np.array([int(gold_present[int(c)]) for c in candidate_ids[gold_items]], dtype=np.int64),
    )
    policies = list(CampaignSynset.objects.filter(campaign=campaign, synset_id__any=synset_ids.tolist()))
    index = {int(s): g for g, s in enumerate(synset_ids)}
    for policy in policies:
        policy.item_kinds = kinds_stored(shares[index[policy.synset_id]])
    CampaignSynset.objects.bulk_update(policies, ["item_kinds"], batch_size=WRITE_BATCH)
    return posteriors[:, 1]


def _write_candidates(campaign, result, p_present, candidate_ids, gold_mask, counted) -> dict[str, int]:
    pooled = np.average(result.model.confusion, axis=0, weights=np.maximum(result.model.worker_answers, 1))
    pooled_confusion_set(campaign_id=campaign.id, sensitivity=pooled[1, 1], specificity=pooled[0, 0])
    version = f"{MODEL_VERSION}/{result.source}"
    policy_of = dict(CampaignSynset.objects.filter(campaign=campaign).values_list("synset_id", "id"))
    real = np.flatnonzero(~gold_mask)
    for start in range(0, len(real), WRITE_BATCH):
        chunk = real[start : start + WRITE_BATCH]
        changes: Counter = Counter()
        with transaction.atomic():
            rows = list(
                Candidate.objects.select_for_update().filter(id__in=candidate_ids[chunk].tolist()).order_by("id")
            )
            position = {int(c): int(i) for c, i in zip(candidate_ids[chunk], chunk, strict=True)}
            overridden = overridden_ids(position)
            # A candidate awaiting its consensus job (hit_submit marks it with a negative priority) has votes
            # this refit may not have streamed: the job weighs them with the new worker parameters, and
            # until then the mark keeps the scheduler from buying another vote on a stale posterior.
            rows = [row for row in rows if row.id not in overridden and row.priority >= 0]
            at = np.array([position[row.id] for row in rows], dtype=np.intp)
            # The same rule as the per-HIT update (consensus.decide), hysteresis included: a refit's new
            # worker parameters do not reopen a decided candidate by a hair.
            codes, priority = decide(
                p_present[at], counted[at], campaign, pooled, [r.state for r in rows], [r.votes_count for r in rows]
            )
            for j, row in enumerate(rows):
                i = position[row.id]
                state = STATE_OF[ItemState(int(codes[j]))]
                if state == Candidate.State.VOTING and row.state == Candidate.State.NEW:
                    state = Candidate.State.NEW
                policy_id = policy_of.get(row.synset_id)
                if state != row.state and policy_id is not None:
                    if row.state in COUNTED:
                        changes[(policy_id, COUNTED[row.state])] -= 1
                    if state in COUNTED:
                        changes[(policy_id, COUNTED[state])] += 1
                row.state, row.posterior, row.priority, row.model_version = (
                    state,
                    float(p_present[i]),
                    float(priority[j]),
                    version,
                )
            candidates_write(rows)  # Django's bulk_update was ~97% of a refit's CPU
            # The counters move with the states, in the same transaction, as on the per-HIT path: a recount
            # here scanned every candidate of the campaign after each refit (~180 ms at 10^6, and a young
            # campaign refits every few dozen HITs).
            counters_move(changes)
    totals = CampaignSynset.objects.filter(campaign=campaign).aggregate(
        accepted=Sum("accepted"), rejected=Sum("rejected"), unresolved=Sum("unresolved")
    )
    return {state: total or 0 for state, total in totals.items()}


def campaign_counters_recount(*, campaign: Campaign) -> dict[str, int]:
    """Recount accepted / rejected / unresolved per synset from candidate states: a scan of every candidate of
    the campaign, for states set outside consensus in bulk (the box simulation's set-up); consensus, refits and
    overrides move the counters with their states. One grouped query and one UPDATE on PostgreSQL."""
    totals: Counter = Counter()
    with transaction.atomic():
        policies = list(
            CampaignSynset.objects.select_for_update()
            .filter(campaign=campaign)
            .order_by("id")
            .values_list("id", "synset_id")
        )
        by_synset: dict[int, Counter] = {synset_id: Counter() for _, synset_id in policies}
        for synset_id, state, n in (
            Candidate.objects.filter(synset_id__any=list(by_synset))
            .values_list("synset_id", "state")
            .annotate(n=Count("id"))
            .order_by()
        ):
            by_synset[synset_id][state] += n
            totals[state] += n
        states = (Candidate.State.ACCEPTED, Candidate.State.REJECTED, Candidate.State.UNRESOLVED)
        rows = [(policy_id, *(by_synset[synset_id][s] for s in states)) for policy_id, synset_id in policies]
        if connection.vendor == "postgresql":
            table = connection.ops.quote_name(CampaignSynset._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET accepted = v.a, rejected = v.r, unresolved = v.u "
                    "FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::integer[]) AS v(id, a, r, u) "
                    f"WHERE {table}.id = v.id",
                    [[row[i] for row in rows] for i in range(4)],
                )
        else:
            for policy_id, accepted, rejected, unresolved in rows:
                CampaignSynset.objects.filter(id=policy_id).update(
                    accepted=accepted, rejected=rejected, unresolved=unresolved
                )
    return dict(totals)


# A refit is due after this many new votes, or 10% more votes than at the last refit, whichever is larger.
# With gold in the HITs, small (two HITs' worth): a young campaign refits after nearly every pair of HITs,
# so a spammer is judged on its second or third HIT instead of after hundreds of others (the crowd
# simulator's spam scenario); a refit of a few thousand votes takes milliseconds, and once the 10% rule
# takes over (past ~500 votes) the number of refits grows only with the logarithm of the campaign's size.
# Without gold, EM on a few dozen votes has nothing to anchor it (MODEL.md), so the first refit waits for
# REFIT_MIN_NEW_VOTES_NO_GOLD votes as before.
REFIT_MIN_NEW_VOTES = 48
REFIT_MIN_NEW_VOTES_NO_GOLD = 500


def _refit_due(total: int, votes_at_refit: int, gold_rate: float, every: int | None) -> bool:
    if every is None:
        every = REFIT_MIN_NEW_VOTES if gold_rate > 0 else REFIT_MIN_NEW_VOTES_NO_GOLD
    return total - votes_at_refit >= max(every, votes_at_refit // 10)


def campaign_refit_due(*, campaign: Campaign, every: int | None = None) -> bool:
    """Enough new votes since the last refit (at least `every`, or 10% more) to be worth a refit."""
    total = CampaignSynset.objects.filter(campaign=campaign).aggregate(v=Sum("votes"))["v"] or 0
    return _refit_due(total, campaign.votes_at_refit, campaign.gold_rate, every)


def running_campaigns_refit_due(*, campaign_ids, every: int | None = None) -> list[int]:
    """Which of these campaigns are running and due a refit (campaign_refit_due's rule), in one written query:
    every consensus drain asks, and two ORM queries per campaign were a tenth of a drain's CPU."""
    where, params = column_in("c.id", sorted(campaign_ids))
    rows = fetch(
        f"SELECT c.id, c.votes_at_refit, c.gold_rate, COALESCE(SUM(cs.votes), 0) "
        f"FROM {connection.ops.quote_name(Campaign._meta.db_table)} c "
        f"JOIN {connection.ops.quote_name(CampaignSynset._meta.db_table)} cs ON cs.campaign_id = c.id "
        f"WHERE {where} AND c.state = %s GROUP BY c.id, c.votes_at_refit, c.gold_rate ORDER BY c.id",
        [*params, Campaign.State.RUNNING.value],
    )
    return [campaign_id for campaign_id, at_refit, gold, total in rows if _refit_due(total, at_refit, gold, every)]
