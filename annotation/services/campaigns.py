"""Campaign set-up: creation with its label-set checks, state changes, gold items."""

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Forbidden, NameTaken, hidden_character
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem
from annotation.services import consensus, rollups
from annotation.services.refit import DECISION_POLICY, campaign_counters_recount
from taxonomy import selectors as taxonomy
from taxonomy.models import Synset, wnid_from_offset
from workers.roles import Role
from workers.services import user_has_role

# Allowed state changes: draft -> running <-> paused -> finished.
TRANSITIONS = {
    Campaign.State.DRAFT: {Campaign.State.RUNNING, Campaign.State.FINISHED},
    Campaign.State.RUNNING: {Campaign.State.PAUSED, Campaign.State.FINISHED},
    Campaign.State.PAUSED: {Campaign.State.RUNNING, Campaign.State.FINISHED},
    Campaign.State.FINISHED: set(),
}


def synsets_claim_check(*, user: User | None, synset_ids, doing: str) -> None:
    """A synset's candidates are one per image and shared by every campaign over it: images imported for it,
    decisions overridden and gold answers set change them for each of those campaigns. So while a researcher's
    campaign over a synset is unfinished, only that researcher (and admins) may do any of this to the synset —
    label it in a new campaign, import images for it, override its decisions, make its candidates gold. Raises
    Forbidden with a sentence ending in ``doing``; ``user`` None (a command, a job) or an admin may always.
    (QA: a second researcher created a draft campaign over the first one's synset, and through it rejected the
    first one's accepted images and set gold with wrong answers in the first one's running campaign.)"""
    if user is None or user_has_role(user, Role.ADMIN):
        return
    unfinished = CampaignSynset.objects.filter(synset_id__in=list(synset_ids)).exclude(
        campaign__state=Campaign.State.FINISHED
    )
    # An admin's campaign claims a synset against other researchers too, but not against a researcher whose own
    # unfinished campaign has it: an admin who labels the same synsets must not lock the owner out of their
    # running campaign (QA: a draft of an admin's over the leaves under animal took every animal synset away
    # from a researcher's running ILSVRC campaign).
    own = unfinished.filter(campaign__owner=user).values("synset_id")
    admins = Q(campaign__owner__is_superuser=True) | Q(campaign__owner__groups__name=Role.ADMIN.value)
    clash = (
        unfinished.exclude(campaign__owner=user)
        .exclude(admins & Q(synset_id__in=own))
        .order_by("synset_id")
        .values_list("synset_id", flat=True)
        .first()
    )
    if clash is not None:
        raise Forbidden(
            f"{wnid_from_offset(clash)} is in another researcher's unfinished campaign, and its images are shared "
            f"by every campaign over it: only that researcher or an admin may {doing} until it is finished."
        )


def synsets_claim_hold(*, user: User | None, synset_ids, doing: str) -> None:
    """``synsets_claim_check`` inside the caller's transaction, with the synsets' rows share-locked first (in id
    order) until it commits: a campaign being created over one of them (``campaign_create`` locks them for update)
    is then either committed before the check, which sees it, or waits until the caller's work is committed. Without
    the lock an import checked while another researcher's campaign over its synset was still uncommitted, and its
    images entered that campaign's queue. Share locks let imports for one synset run side by side. PostgreSQL only:
    SQLite has no row locks and runs one writer at a time."""
    if user is None or user_has_role(user, Role.ADMIN):
        return
    ids = sorted(set(synset_ids))
    if connection.vendor == "postgresql" and ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Synset._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR SHARE", [ids]
            )  # fmt: skip
    synsets_claim_check(user=user, synset_ids=ids, doing=doing)


@transaction.atomic
def campaign_create(*, owner: User, name: str, wnids: list[str], allow_sensitive: bool = False, **policy) -> Campaign:
    """A draft campaign over a label set that must not overlap (no member an ancestor of another);
    sensitive synsets (people) need ``allow_sensitive``."""
    try:
        report = taxonomy.label_set_check(wnids=wnids)
    except taxonomy.InvalidWnid as error:
        raise AnnotationError(str(error)) from None
    # Unknown wnids first: a list of only unknown ones has no synset either, and "needs at least one synset"
    # hid which wnids were wrong (QA).
    if report.unknown:
        raise AnnotationError(f"Unknown synsets: {', '.join(report.unknown[:5])}.")
    if not report.synsets:
        raise AnnotationError("A campaign needs at least one synset.")
    if report.overlaps:
        ancestor, descendant = report.overlaps[0]
        raise AnnotationError(
            f"The label set overlaps: {ancestor} is an ancestor of {descendant} "
            f"({len(report.overlaps)} pair{'' if len(report.overlaps) == 1 else 's'})."
        )
    if report.sensitive and not allow_sensitive:
        which = (
            f"{report.sensitive[0]} is sensitive (a people category)"
            if len(report.sensitive) == 1
            else f"{len(report.sensitive)} synsets are sensitive (people categories), e.g. {report.sensitive[0]}"
        )
        raise AnnotationError(
            f"{which}; opt in explicitly with allow_sensitive to label "
            + ("them." if len(report.sensitive) > 1 else "it.")
        )
    name = (name or "").strip()
    if hidden := hidden_character(name):
        raise AnnotationError(f"A campaign name may not hold control or text-direction characters ({hidden}).")
    _refuse_a_name_taken(owner=owner, name=name)
    synset_ids = sorted(s.id for s in report.synsets)
    # The synsets' rows locked (in id order, as imports lock them) before the claim is checked: two researchers
    # creating campaigns over one synset at once then queue, and the second sees the first one's campaign.
    list(Synset.objects.select_for_update().filter(id__in=synset_ids).order_by("id").values_list("id", flat=True))
    synsets_claim_check(user=owner, synset_ids=synset_ids, doing="label it in a campaign")
    campaign = Campaign(owner=owner, name=name, allow_sensitive=allow_sensitive, **policy)
    campaign.full_clean()
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:
        # Another create of this name committed after the check above (the unique constraint made this one wait
        # for it): the same sentence as when it came first.
        _refuse_a_name_taken(owner=owner, name=name)
        raise
    CampaignSynset.objects.bulk_create(CampaignSynset(campaign=campaign, synset=s) for s in report.synsets)
    decided = Candidate.objects.filter(synset_id__in=[s.id for s in report.synsets], state__in=COUNTED_STATES)
    if decided.exists():
        # Candidates are shared by every campaign over their synset: a campaign over synsets labelled before
        # starts from their states (consensus.counters_move keeps them in step from then on).
        campaign_counters_recount(campaign=campaign)
    rollups.campaign_created(campaign=campaign)
    return campaign


def _refuse_a_name_taken(*, owner: User, name: str) -> None:
    """Raises NameTaken (a 409) naming the owner's campaign of this name, case and surrounding spaces aside (pages, the
    dashboard and exports show campaigns by name). Compared in Python, which folds the case of every letter:
    SQLite's lower() folds ASCII only; the unique constraint campaign_owner_name_unique holds under races."""
    key = name.strip().lower()
    for campaign_id, existing in Campaign.objects.filter(owner=owner).order_by("id").values_list("id", "name"):
        if existing.strip().lower() == key:
            raise NameTaken(
                f'You already have a campaign named "{existing}" (campaign {campaign_id}); give this one another name.'
            )


COUNTED_STATES = [Candidate.State.ACCEPTED, Candidate.State.REJECTED, Candidate.State.UNRESOLVED]


@transaction.atomic
def campaign_set_state(*, campaign: Campaign, state: str) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    if state not in TRANSITIONS[campaign.state]:
        raise Conflict(f"A {campaign.state} campaign cannot become {state}.")
    if state == Campaign.State.FINISHED and campaign.state in (Campaign.State.RUNNING, Campaign.State.PAUSED):
        # Votes whose consensus update has not run yet (a drain still queued, or lost with a killed Celery
        # worker) are weighed now, while the campaign's policy still applies: once it is finished consensus
        # leaves its candidates alone, and those votes would never count in its decisions (chaos QA).
        # Only the synsets with such candidates (the candidate_awaiting partial index holds few rows): looking
        # synset by synset cost a query each, 20,000 for a large campaign's Finish.
        awaiting = (
            Candidate.objects.filter(
                priority__lt=0, synset_id__in=CampaignSynset.objects.filter(campaign=campaign).values("synset_id")
            )
            .values_list("synset_id", flat=True)
            .distinct()
        )
        consensus.candidates_awaiting_update(synset_ids=list(awaiting))
    campaign.state = state
    fields = ["state"]
    if state == Campaign.State.RUNNING:
        campaign.running_since = timezone.now()
        fields.append("running_since")
    campaign.save(update_fields=fields)
    return campaign


# What a researcher may change after creation. The label set and the sensitive opt-in stay as created.
EDITABLE_POLICY = (
    "images_per_hit", "target_per_synset", "min_votes", "max_votes", "confidence", "gold_rate",
    "lease_seconds", "reward_per_hit", "quiz_size", "quiz_pass_mark", "quiz_retry_seconds", "quiz_per_synset",
    "min_worker_accuracy", "boxes_enabled",
)  # fmt: skip
# Changing one of these changes decisions already taken, so the candidates are re-evaluated.


@transaction.atomic
def campaign_update_policy(*, campaign: Campaign, **policy) -> Campaign:
    """Change the policy of a campaign that is not finished. Open HITs keep the items they were leased; new
    HITs, new votes and new rewards follow the new policy. A change to the votes range or the confidence
    re-evaluates the campaign's candidates after commit (the refit job), so every decision follows one rule."""
    unknown = sorted(set(policy) - set(EDITABLE_POLICY))
    if unknown:
        raise AnnotationError(f"These policy fields cannot be changed: {', '.join(unknown)}.")
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    if campaign.state == Campaign.State.FINISHED:
        raise Conflict("A finished campaign's policy cannot change.")
    changed = [field for field, value in policy.items() if getattr(campaign, field) != value]
    for field in changed:
        setattr(campaign, field, policy[field])
    try:
        campaign.full_clean()
    except ValidationError as error:
        problems = "; ".join(
            " ".join(messages) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
        raise AnnotationError(f"The policy is not valid: {problems}") from None
    if DECISION_POLICY.intersection(changed):
        # Due for a refit: the queued one below, or the periodic one if the broker is down right now.
        campaign.votes_at_refit = 0
        changed.append("votes_at_refit")
    if changed:
        campaign.save(update_fields=changed)
    if DECISION_POLICY.intersection(changed):
        from annotation import tasks  # the task module imports the services

        transaction.on_commit(lambda: tasks.campaign_refit.delay(campaign.id))
    return campaign


@transaction.atomic
def gold_item_create(*, candidate: Candidate, present: bool, created_by: User | None = None) -> GoldItem:
    """Make a candidate a gold item with a known answer. It leaves the voting queue for good."""
    # The candidate's row lock serialises this check with a concurrent request for the same candidate (two
    # clicks both found no gold and the second INSERT failed on the unique candidate: a 500) and with an
    # override, which locks the candidate before its own gold check.
    Candidate.objects.select_for_update().filter(id=candidate.id).exists()
    if GoldItem.objects.filter(candidate=candidate).exists():
        raise Conflict(f"Candidate {candidate.id} is already a gold item.")
    return GoldItem.objects.create(
        candidate=candidate, synset_id=candidate.synset_id, present=present, created_by=created_by
    )
