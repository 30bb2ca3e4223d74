"""Qualification: a short quiz of gold items before real work."""

from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotation.errors import AnnotationError, Conflict, Forbidden, NotFound
from annotation.models import Campaign, CampaignSynset, GoldItem, QuizAttempt
from annotation.services.draws import draw_rng
from workers.models import Qualification


def qualification_get(*, worker: User, campaign: Campaign) -> Qualification:
    return Qualification.objects.get_or_create(worker=worker, campaign=campaign)[0]


def quiz_due(*, worker: User, campaign: Campaign) -> bool:
    """Whether this worker must pass the campaign's quiz before any labelling (no qualification yet, or only
    a trial one). A blocked worker is not sent to a quiz: next-HIT tells them why they are blocked."""
    status = Qualification.objects.filter(worker=worker, campaign=campaign).values_list("status", flat=True).first()
    return status is None or status == Qualification.Status.TRIAL


def blocked_error(*, worker_id: int, campaign_id: int) -> Forbidden:
    """What a blocked worker is told: that they are blocked, why (the reason this campaign recorded with the
    block, e.g. the spam screen's), and who can lift it."""
    reason = (
        Qualification.objects.filter(worker_id=worker_id, campaign_id=campaign_id)
        .values_list("blocked_reason", flat=True)
        .first()
    )
    why = f" The reason recorded: {reason.rstrip('.')}." if reason else ""
    return Forbidden(f"You are blocked from this campaign.{why} A researcher of the campaign can unblock you.")


def retry_wait(qualification: Qualification) -> int:
    """Whole seconds until this worker may take the campaign's quiz again (0: now)."""
    if qualification.retry_after and qualification.retry_after > timezone.now():
        return int((qualification.retry_after - timezone.now()).total_seconds()) + 1
    return 0


@transaction.atomic
def quiz_start(*, worker: User, campaign: Campaign) -> QuizAttempt:
    """A new quiz of gold items drawn from the campaign's synsets — or, in a campaign with a quiz per synset,
    from the one synset furthest behind its target whose quiz this worker has not passed yet. Refused while
    a retry delay runs. A worker has one open quiz per campaign: while one is unanswered, it is the one
    returned (QA: three starts before answering gave three attempts with the same items, each answered for a
    score while the retry delay ran, so a worker could flip one answer per attempt and learn the quiz)."""
    if campaign.state != Campaign.State.RUNNING:
        # A draft's gold is still being chosen and a paused or finished campaign hands out no work: a quiz
        # would only show its gold images for nothing.
        raise Conflict(f"Campaign “{campaign.name}” is {campaign.state}, not running: there is no quiz to take.")
    qualification_get(worker=worker, campaign=campaign)
    # Locked: two starts at once would each find no open attempt and each create one.
    qualification = Qualification.objects.select_for_update().get(worker=worker, campaign=campaign)
    if qualification.status == Qualification.Status.QUALIFIED and not campaign.quiz_per_synset:
        raise Conflict("You are already qualified for this campaign.")
    if qualification.status == Qualification.Status.BLOCKED:
        raise blocked_error(worker_id=worker.id, campaign_id=campaign.id)
    if wait := retry_wait(qualification):
        raise Forbidden(f"You can try the quiz again in {wait} seconds.")
    open_attempt = (
        QuizAttempt.objects.filter(worker=worker, campaign=campaign, score__isnull=True).order_by("-id").first()
    )
    if open_attempt is not None:
        return open_attempt
    gold = GoldItem.objects.filter(synset__campaigns=campaign)
    synset_id = None
    if campaign.quiz_per_synset:
        synset_id = next_synset_to_qualify(worker=worker, campaign=campaign)
        if synset_id is None:
            raise Conflict("You have passed the quiz of every synset of this campaign that still needs images.")
        gold = gold.filter(synset_id=synset_id)
    pool = list(gold.order_by("id").values_list("id", flat=True)[:2000])
    if not pool:
        raise Conflict("This campaign has no gold items yet, so there is no quiz; ask its researcher.")
    # Seeded by the attempts answered so far (services/draws.py): a restart before answering shows the same items.
    rng = draw_rng("quiz", worker.id, campaign.id, qualification.attempts)
    items = rng.sample(pool, min(campaign.quiz_size, len(pool)))
    return QuizAttempt.objects.create(campaign=campaign, worker=worker, synset_id=synset_id, items=items)


def passed_synset_ids(*, worker_id: int, campaign_id: int) -> list[int]:
    """The synsets whose quiz this worker passed in a campaign with a quiz per synset."""
    return list(
        QuizAttempt.objects.filter(worker_id=worker_id, campaign_id=campaign_id, passed=True, synset__isnull=False)
        .values_list("synset_id", flat=True)
        .distinct()
    )


def next_synset_to_qualify(*, worker: User, campaign: Campaign) -> int | None:
    """The synset, among those with gold whose quiz this worker has not passed and that are short of their
    target, furthest behind it; None when there is none."""
    passed = passed_synset_ids(worker_id=worker.id, campaign_id=campaign.id)
    with_gold = GoldItem.objects.filter(synset_id=OuterRef("synset_id"))
    return (
        CampaignSynset.objects.filter(campaign=campaign, accepted__lt=campaign.target_per_synset)
        .exclude(synset_id__in=passed)
        .filter(Exists(with_gold))
        .order_by("accepted", "synset_id")
        .values_list("synset_id", flat=True)
        .first()
    )


@transaction.atomic
def quiz_submit(*, worker: User, attempt_id: int, answers: dict) -> QuizAttempt:
    """Score a quiz: ``answers`` maps each gold item id (as a string or int) to true (present) or false.
    Only the worker's latest attempt in the campaign is scored, and not while a retry delay runs: a score is
    what tells a worker how many answers were right, so it is given once per allowed try."""
    attempt = QuizAttempt.objects.filter(id=attempt_id, worker=worker).first()
    if attempt is None:
        raise NotFound(f"You have no quiz {attempt_id}.")
    # The qualification first, then the attempt: the order quiz_start locks in.
    qualification = Qualification.objects.select_for_update().get(worker=worker, campaign_id=attempt.campaign_id)
    attempt = QuizAttempt.objects.select_for_update().get(id=attempt.id)
    if qualification.status == Qualification.Status.BLOCKED:
        # Blocked since the quiz started (a person, or the spam screen after a HIT): a pass below would set the
        # qualification to qualified and lift the block, HITs and pay again for votes that count nowhere.
        raise blocked_error(worker_id=worker.id, campaign_id=attempt.campaign_id)
    if attempt.score is not None:
        raise Conflict("This quiz was already answered; start a new one.")
    latest = QuizAttempt.objects.filter(worker=worker, campaign_id=attempt.campaign_id).order_by("-id").first()
    if latest.id != attempt.id:
        raise Conflict(f"Quiz {attempt.id} was replaced by a newer one ({latest.id}); answer that one.")
    if wait := retry_wait(qualification):
        raise Forbidden(f"You can try the quiz again in {wait} seconds.")
    if not isinstance(answers, dict):
        raise AnnotationError("answers must map each quiz item to true or false.")
    given = {str(k): v for k, v in answers.items()}
    expected = {str(i) for i in attempt.items}
    if set(given) != expected:
        raise AnnotationError(f"Answer exactly the {len(expected)} items of this quiz.")
    if any(not isinstance(v, bool) for v in given.values()):
        raise AnnotationError("Each answer must be true (present) or false (absent).")
    truth = dict(GoldItem.objects.filter(id__in=attempt.items).values_list("id", "present"))
    correct = sum(given[str(i)] == truth[i] for i in attempt.items)
    attempt.score = correct / len(attempt.items)
    attempt.passed = attempt.score >= attempt.campaign.quiz_pass_mark
    attempt.save(update_fields=["score", "passed"])
    qualification.attempts += 1
    qualification.best_score = max(qualification.best_score or 0.0, attempt.score)
    if attempt.passed:
        qualification.status = Qualification.Status.QUALIFIED
        qualification.retry_after = None
    else:
        qualification.retry_after = timezone.now() + timedelta(seconds=attempt.campaign.quiz_retry_seconds)
    qualification.save()
    return attempt
