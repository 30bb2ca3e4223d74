"""Campaign set-up: creation with its label-set checks, state changes, gold items."""

from django.contrib.auth.models import User
from django.db import transaction

from annotation.errors import AnnotationError, Conflict
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem
from taxonomy import selectors as taxonomy

# Allowed state changes: draft -> running <-> paused -> finished.
TRANSITIONS = {
    Campaign.State.DRAFT: {Campaign.State.RUNNING, Campaign.State.FINISHED},
    Campaign.State.RUNNING: {Campaign.State.PAUSED, Campaign.State.FINISHED},
    Campaign.State.PAUSED: {Campaign.State.RUNNING, Campaign.State.FINISHED},
    Campaign.State.FINISHED: set(),
}


@transaction.atomic
def campaign_create(*, owner: User, name: str, wnids: list[str], allow_sensitive: bool = False, **policy) -> Campaign:
    """A draft campaign over a label set that must not overlap (no member an ancestor of another);
    sensitive synsets (people) need ``allow_sensitive``."""
    try:
        report = taxonomy.label_set_check(wnids=wnids)
    except taxonomy.InvalidWnid as error:
        raise AnnotationError(str(error)) from None
    if not report.synsets:
        raise AnnotationError("A campaign needs at least one synset.")
    if report.unknown:
        raise AnnotationError(f"Unknown synsets: {', '.join(report.unknown[:5])}.")
    if report.overlaps:
        ancestor, descendant = report.overlaps[0]
        raise AnnotationError(
            f"The label set overlaps: {ancestor} is an ancestor of {descendant} ({len(report.overlaps)} pairs)."
        )
    if report.sensitive and not allow_sensitive:
        raise AnnotationError(
            f"{len(report.sensitive)} synsets are sensitive (people categories), e.g. {report.sensitive[0]}; "
            "opt in explicitly with allow_sensitive to label them."
        )
    campaign = Campaign(owner=owner, name=name, allow_sensitive=allow_sensitive, **policy)
    campaign.full_clean()
    campaign.save()
    CampaignSynset.objects.bulk_create(CampaignSynset(campaign=campaign, synset=s) for s in report.synsets)
    return campaign


@transaction.atomic
def campaign_set_state(*, campaign: Campaign, state: str) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    if state not in TRANSITIONS[campaign.state]:
        raise Conflict(f"A {campaign.state} campaign cannot become {state}.")
    campaign.state = state
    campaign.save(update_fields=["state"])
    return campaign


@transaction.atomic
def gold_item_create(*, candidate: Candidate, present: bool, created_by: User | None = None) -> GoldItem:
    """Make a candidate a gold item with a known answer. It leaves the voting queue for good."""
    if GoldItem.objects.filter(candidate=candidate).exists():
        raise Conflict(f"Candidate {candidate.id} is already a gold item.")
    return GoldItem.objects.create(candidate=candidate, present=present, created_by=created_by)
