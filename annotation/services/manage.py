"""A researcher steering a campaign and an admin managing workers: overriding or re-opening consensus
decisions (recorded as DecisionOverride), researchers' own verdicts in a precision audit (AuditJudgement),
gold items from candidates, blocking and unblocking workers with a reason (recorded as WorkerAction), bonuses
and corrections of a worker's earnings, approving payments."""

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Max, Sum

from annotation.errors import AnnotationError, Conflict, NotFound, shown
from annotation.models import (
    AuditJudgement,
    BoxTask,
    Campaign,
    CampaignSynset,
    Candidate,
    DecisionOverride,
    GoldItem,
    Hit,
    WorkerAction,
)
from annotation.selectors.dashboard import AUDIT_WINDOW, audit_draw
from annotation.services import refit
from annotation.services.campaigns import gold_item_create, synsets_claim_hold
from annotation.services.consensus import counters_move
from workers.models import LedgerEntry, Qualification, WorkerProfile
from workers.roles import Role
from workers.services import user_has_role

COUNTED = {
    Candidate.State.ACCEPTED: "accepted",
    Candidate.State.REJECTED: "rejected",
    Candidate.State.UNRESOLVED: "unresolved",
}
OVERRIDE_STATE = {
    DecisionOverride.Action.ACCEPT: Candidate.State.ACCEPTED,
    DecisionOverride.Action.REJECT: Candidate.State.REJECTED,
    DecisionOverride.Action.REOPEN: Candidate.State.VOTING,
}
# A re-opened candidate goes to the front of its synset's queue.
REOPEN_PRIORITY = 1.0
# Promotion to gold takes only confidently decided candidates with enough votes behind them.
PROMOTE_MIN_CONFIDENCE = 0.99
PROMOTE_MIN_VOTES = 3


def _candidate_in(campaign: Campaign, candidate_id: int, *, lock: bool = False) -> Candidate:
    rows = Candidate.objects.select_for_update() if lock else Candidate.objects
    candidate = rows.filter(id=candidate_id).first()
    if (
        candidate is None
        or not CampaignSynset.objects.filter(campaign=campaign, synset_id=candidate.synset_id).exists()
    ):
        raise NotFound(f"Campaign {campaign.id} has no candidate {candidate_id}.")
    return candidate


@transaction.atomic
def candidate_override(
    *, campaign: Campaign, candidate_id: int, action: str, reason: str = "", by: User | None = None
) -> DecisionOverride:
    """Accept, reject or re-open a candidate against (or regardless of) consensus. The campaign's synset
    counters move with it, and a DecisionOverride records who, why and what consensus had said."""
    if action not in OVERRIDE_STATE:
        raise AnnotationError(f"action must be accept, reject or reopen; got {shown(action)}.")
    candidate = _candidate_in(campaign, candidate_id, lock=True)
    synsets_claim_hold(user=by, synset_ids=[candidate.synset_id], doing="override its decisions")
    if GoldItem.objects.filter(candidate=candidate).exists():
        raise Conflict(f"Candidate {candidate.id} is a gold item; its answer is fixed.")
    new_state = OVERRIDE_STATE[action]
    if candidate.state == new_state:
        raise Conflict(f"Candidate {candidate.id} is already {new_state}.")
    record = DecisionOverride.objects.create(
        campaign=campaign,
        candidate=candidate,
        action=action,
        previous_state=candidate.state,
        previous_posterior=candidate.posterior,
        reason=reason[:300],
        created_by=by,
    )
    # Every campaign over the synset counts this candidate (consensus.counters_move says why).
    policy_id = CampaignSynset.objects.get(campaign=campaign, synset_id=candidate.synset_id).id
    moves: Counter = Counter()
    if candidate.state in COUNTED:
        moves[(policy_id, COUNTED[candidate.state])] -= 1
    if new_state in COUNTED:
        moves[(policy_id, COUNTED[new_state])] += 1
    counters_move(moves)
    candidate.state = new_state
    fields = ["state"]
    if action == DecisionOverride.Action.REOPEN:
        candidate.priority = REOPEN_PRIORITY
        fields.append("priority")
    candidate.save(update_fields=fields)
    return record


@transaction.atomic
def candidate_audit(
    *, campaign: Campaign, candidate_id: int, correct: bool, by: User | None = None
) -> tuple[AuditJudgement, bool]:
    """A researcher's verdict on an accepted candidate that the synset's precision audit drew
    (``audit_draw``): the synset is in the image (``correct``) or it is not. The same verdict again changes
    nothing; a different one replaces it (a slip of the mouse). Returns the judgement and whether anything
    was written. The candidate's state is left alone: the audit measures, an override corrects."""
    candidate = _candidate_in(campaign, candidate_id, lock=True)
    synsets_claim_hold(user=by, synset_ids=[candidate.synset_id], doing="audit its labels")
    judgement = AuditJudgement.objects.filter(candidate=candidate).first()
    if judgement is not None:
        if judgement.correct == correct:
            return judgement, False
        judgement.correct, judgement.judged_by = correct, by
        judgement.save(update_fields=["correct", "judged_by", "judged"])
        return judgement, True
    if GoldItem.objects.filter(candidate=candidate).exists():
        raise Conflict(f"Candidate {candidate.id} is a gold item: its answer is known, the audit judges consensus.")
    if candidate.state != Candidate.State.ACCEPTED:
        raise Conflict(f"Candidate {candidate.id} is {candidate.state}; the audit judges accepted candidates only.")
    if candidate.id not in audit_draw(synset_id=candidate.synset_id, limit=AUDIT_WINDOW):
        raise Conflict(
            f"Candidate {candidate.id} is not among the next {AUDIT_WINDOW} images this synset's audit drew; "
            "judge the images the audit draws, so that the sample stays random."
        )
    judgement = AuditJudgement.objects.create(
        candidate=candidate,
        synset_id=candidate.synset_id,
        campaign=campaign,
        correct=correct,
        posterior=candidate.posterior,
        judged_by=by,
    )
    return judgement, True


@transaction.atomic
def gold_from_candidate(*, campaign: Campaign, candidate_id: int, present: bool, by: User | None = None) -> GoldItem:
    """Mark a campaign candidate as gold with a known answer (it leaves the voting queue)."""
    candidate = _candidate_in(campaign, candidate_id)
    synsets_claim_hold(user=by, synset_ids=[candidate.synset_id], doing="set gold answers for it")
    return gold_item_create(candidate=candidate, present=present, created_by=by)


@dataclass(frozen=True)
class Promotion:
    present: int
    absent: int


@transaction.atomic
def gold_promote(
    *,
    campaign: Campaign,
    synset_id: int,
    limit: int = 20,
    min_confidence: float = PROMOTE_MIN_CONFIDENCE,
    by: User | None = None,
) -> Promotion:
    """Promote up to ``limit`` confidently accepted candidates (posterior ≥ min_confidence) to present gold
    and as many confidently rejected ones (posterior ≤ 1 - min_confidence) to absent gold, each with at
    least PROMOTE_MIN_VOTES votes, most confident first."""
    if not CampaignSynset.objects.filter(campaign=campaign, synset_id=synset_id).exists():
        raise NotFound(f"Campaign {campaign.id} has no synset {synset_id}.")
    synsets_claim_hold(user=by, synset_ids=[synset_id], doing="set gold answers for it")
    if not 1 <= limit <= 500:
        raise AnnotationError("limit must be from 1 to 500.")
    base = Candidate.objects.filter(synset_id=synset_id, votes_count__gte=PROMOTE_MIN_VOTES, gold__isnull=True)
    present = list(
        base.filter(state=Candidate.State.ACCEPTED, posterior__gte=min_confidence)
        .order_by("-posterior", "id")
        .values_list("id", flat=True)[:limit]
    )
    absent = list(
        base.filter(state=Candidate.State.REJECTED, posterior__lte=1 - min_confidence)
        .order_by("posterior", "id")
        .values_list("id", flat=True)[:limit]
    )
    # Their rows locked in id order, as a single "make gold" (gold_item_create) and an override lock theirs, then
    # those made gold meanwhile left out: a concurrent request on one of them failed this INSERT on the unique
    # candidate (a 500), or deadlocked with another promotion.
    list(Candidate.objects.select_for_update().filter(id__in=present + absent).order_by("id").values_list("id"))
    gold = set(GoldItem.objects.filter(candidate_id__in=present + absent).values_list("candidate_id", flat=True))
    present = [c for c in present if c not in gold]
    absent = [c for c in absent if c not in gold]
    GoldItem.objects.bulk_create(
        [GoldItem(candidate_id=c, synset_id=synset_id, present=True, created_by=by) for c in present]
        + [GoldItem(candidate_id=c, synset_id=synset_id, present=False, created_by=by) for c in absent]
    )
    return Promotion(present=len(present), absent=len(absent))


# ---- Workers --------------------------------------------------------------------------------------------


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise AnnotationError("Give a reason: the worker and other admins will read it.")
    return reason[:200]


def _worked_in(worker: User, campaign: Campaign) -> bool:
    """Whether the worker has worked in the campaign: holds a qualification there (started or passed its quiz,
    or was blocked there by the spam screen), or was given a HIT or a box task in it. A researcher may block
    only such a worker (QA: a block anywhere drops the worker's votes everywhere, so a block by a campaign the
    worker never touched let any researcher cancel their votes in other researchers' campaigns)."""
    return (
        Qualification.objects.filter(worker=worker, campaign=campaign).exists()
        or Hit.objects.filter(worker=worker, campaign=campaign).exists()
        or BoxTask.objects.filter(worker=worker, campaign=campaign).exists()
    )


def worker_blocked_in(*, worker_id: int) -> list[int]:
    """The campaigns that block this worker, by id. While there is one, the worker's profile says "blocked
    somewhere" and consensus counts their votes in no campaign."""
    return sorted(
        Qualification.objects.filter(worker_id=worker_id, status=Qualification.Status.BLOCKED).values_list(
            "campaign_id", flat=True
        )
    )


def still_blocked_sentence(campaign_ids: list[int]) -> str:
    """What an unblock answers when other campaigns still block the worker ("" when none does)."""
    if not campaign_ids:
        return ""
    which = ", ".join(str(c) for c in campaign_ids)
    return f"Still blocked in campaign(s) {which}: their votes stay uncounted everywhere until that block is lifted."


@dataclass(frozen=True)
class WorkerBlockChange:
    record: WorkerAction
    blocked_in: list[int]  # the campaigns that block the worker after the change
    message: str  # still_blocked_sentence after an unblock that leaves other blocks standing, else ""


@transaction.atomic
def worker_block(
    *, worker: User, reason: str, campaign: Campaign | None = None, by: User | None = None
) -> WorkerBlockChange:
    """Block a worker in one campaign, or everywhere (``campaign`` None): their votes stop counting from
    the next consensus update on, and they get no more HITs there. Only crowd workers can be blocked: an admin's
    or researcher's account (one's own included) is refused. A campaign block needs a worker who worked in the
    campaign (_worked_in; else NotFound) and not blocked there yet (else Conflict); a block everywhere needs one
    not blocked everywhere yet. A refusal records nothing."""
    reason = _reason(reason)
    if user_has_role(worker, Role.ADMIN) or user_has_role(worker, Role.RESEARCHER):
        raise AnnotationError(
            f"{worker.username} is an admin or researcher, not a crowd worker; only workers can be blocked."
        )
    profile, _ = WorkerProfile.objects.select_for_update().get_or_create(user=worker)
    if campaign is not None:
        if not _worked_in(worker, campaign):
            # By id, not name: the researcher asking has no business learning a stranger's username.
            raise NotFound(f"Worker {worker.id} has done no work in campaign {campaign.id}.")
        if Qualification.objects.filter(worker=worker, campaign=campaign, status=Qualification.Status.BLOCKED).exists():
            raise Conflict(f"Worker {worker.username} is already blocked in campaign {campaign.id}.")
        campaigns = [campaign]
    else:
        campaigns = list(Campaign.objects.filter(qualifications__worker=worker).distinct().order_by("id"))
        if profile.blocked and set(worker_blocked_in(worker_id=worker.id)) >= {c.id for c in campaigns}:
            raise Conflict(f"Worker {worker.username} is already blocked in every campaign they worked in.")
    WorkerProfile.objects.filter(user=worker).update(blocked=True, blocked_reason=reason)
    for c in campaigns:
        refit.worker_block(worker_id=worker.id, campaign=c, reason=reason)
    record = WorkerAction.objects.create(
        worker=worker, campaign=campaign, action=WorkerAction.Action.BLOCK, reason=reason, created_by=by
    )
    return WorkerBlockChange(record=record, blocked_in=worker_blocked_in(worker_id=worker.id), message="")


@transaction.atomic
def worker_unblock(
    *, worker: User, reason: str, campaign: Campaign | None = None, by: User | None = None
) -> WorkerBlockChange:
    """Undo a block (the worker's votes count again from the next refit on) in one campaign, or everywhere
    (``campaign`` None). Refused (Conflict, nothing recorded) when there is no such block to lift. After a
    campaign unblock other campaigns may still block the worker: their profile then stays "blocked
    somewhere", consensus still drops their votes in every campaign, and the change's ``message`` says so."""
    reason = _reason(reason)
    profile = WorkerProfile.objects.select_for_update().filter(user=worker).first()
    if campaign is not None:
        if not Qualification.objects.filter(
            worker=worker, campaign=campaign, status=Qualification.Status.BLOCKED
        ).exists():
            elsewhere = still_blocked_sentence(worker_blocked_in(worker_id=worker.id))
            raise Conflict(f"Worker {worker.username} is not blocked in campaign {campaign.id}. {elsewhere}".strip())
        refit.worker_unblock(worker_id=worker.id, campaign=campaign)
    else:
        if not (profile is not None and profile.blocked) and not worker_blocked_in(worker_id=worker.id):
            raise Conflict(f"Worker {worker.username} is not blocked anywhere.")
        WorkerProfile.objects.filter(user=worker).update(blocked=False, blocked_reason="")
        Qualification.objects.filter(worker=worker, status=Qualification.Status.BLOCKED).update(
            status=Qualification.Status.QUALIFIED, blocked_reason=""
        )
    record = WorkerAction.objects.create(
        worker=worker, campaign=campaign, action=WorkerAction.Action.UNBLOCK, reason=reason, created_by=by
    )
    blocked_in = worker_blocked_in(worker_id=worker.id)
    return WorkerBlockChange(record=record, blocked_in=blocked_in, message=still_blocked_sentence(blocked_in))


ADJUSTMENT_MAX = Decimal("10000.00")  # a larger bonus or correction is more likely a typo than meant


def _adjustment_amount(value) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise AnnotationError(f"The amount must be a number of the currency, e.g. 2.50; got {shown(value)}.") from None
    if not amount.is_finite():
        raise AnnotationError(f"The amount must be a number to the cent, e.g. 2.50; got {shown(value)}.")
    if abs(amount) > ADJUSTMENT_MAX:  # before the rounding, which fails past the context's 28 digits
        raise AnnotationError(f"The amount must be at most {ADJUSTMENT_MAX} either way; got {shown(value)}.")
    if amount != amount.quantize(Decimal("0.01")):
        raise AnnotationError(f"The amount must be a number to the cent, e.g. 2.50; got {shown(value)}.")
    if amount == 0:
        raise AnnotationError("The amount must not be zero.")
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def ledger_adjust(*, worker: User, kind: str, amount, note: str, by: User | None = None) -> LedgerEntry:
    """Add a bonus (a positive amount) or a correction (either sign) to a crowd worker's earnings, unpaid, with a
    note the worker reads beside their earnings. Entries are never changed, so a wrong entry is put right by a
    correction. A negative correction takes back at most the worker's unpaid earnings: paid entries stay paid,
    and the payouts CSV never lists a negative amount. The worker's unpaid entries are locked first, so that an
    approval running at the same time either pays them before the check sees them or waits for it. A refusal
    records nothing."""
    kinds = {LedgerEntry.Kind.BONUS, LedgerEntry.Kind.CORRECTION}
    if kind not in kinds:
        raise AnnotationError(f"An adjustment is a bonus or a correction; got {shown(kind)}.")
    amount = _adjustment_amount(amount)
    if kind == LedgerEntry.Kind.BONUS and amount < 0:
        raise AnnotationError("A bonus is a positive amount; take earnings back with a correction.")
    note = " ".join((note or "").split())
    if not note:
        raise AnnotationError("Give a note: the worker reads it beside their earnings.")
    if len(note) > 200:
        raise AnnotationError(f"The note is {len(note)} characters long; at most 200.")
    if user_has_role(worker, Role.ADMIN) or user_has_role(worker, Role.RESEARCHER):
        raise AnnotationError(f"{worker.username} is an admin or researcher, not a crowd worker; only workers earn.")
    unpaid = sum(
        LedgerEntry.objects.select_for_update().filter(worker=worker, paid=False).values_list("amount", flat=True),
        Decimal("0"),
    )
    if unpaid + amount < 0:
        raise Conflict(
            f"A correction can take back at most {worker.username}'s unpaid earnings, {unpaid:.2f}: paid entries "
            "stay paid."
        )
    return LedgerEntry.objects.create(worker=worker, kind=kind, amount=amount, note=note, created_by=by)


@dataclass(frozen=True)
class Approval:
    entries: int
    amount: Decimal


@transaction.atomic
def payments_approve(*, worker_ids: list[int] | None = None, up_to_entry: int | None = None) -> Approval:
    """Mark unpaid ledger entries paid: of these workers (all when None), up to and including entry
    ``up_to_entry`` (so that what a payouts CSV listed is what gets approved, not work done since)."""
    entries = LedgerEntry.objects.select_for_update().filter(paid=False)
    if worker_ids is not None:
        entries = entries.filter(worker_id__in=worker_ids)
    if up_to_entry is not None:
        entries = entries.filter(id__lte=up_to_entry)
    ids = list(entries.order_by("id").values_list("id", flat=True))
    total = LedgerEntry.objects.filter(id__in=ids).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    LedgerEntry.objects.filter(id__in=ids).update(paid=True)
    return Approval(entries=len(ids), amount=Decimal(total).quantize(Decimal("0.01")))


def payouts_unpaid():
    """Per worker with unpaid earnings: (worker id, username, external id, entries, amount, last entry id),
    by worker id, streamed from the database."""
    return (
        LedgerEntry.objects.filter(paid=False)
        .values("worker_id")
        .annotate(entries=Count("id"), amount=Sum("amount"), last_entry=Max("id"))
        .order_by("worker_id")
        .values_list(
            "worker_id", "worker__username", "worker__worker_profile__external_id", "entries", "amount", "last_entry"
        )
        .iterator(chunk_size=2000)
    )
