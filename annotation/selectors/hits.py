"""What a worker sees. Gold items are indistinguishable here: every item is a HitItem id and image URLs."""

import statistics
import time
from decimal import Decimal
from urllib.parse import quote

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Exists, OuterRef, Q, Sum

from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, HitItem, Image, QuizAttempt, Vote
from annotation.selectors.images import image_urls, media_urls
from workers.models import LedgerEntry, Qualification, WorkerProfile

EXAMPLES = 4


def display_urls(image) -> dict[str, str]:
    """What a worker's page needs: the grid thumbnail and the enlarged view (not the original file)."""
    urls = image_urls(image)
    return {"thumbnail": urls["thumbnail"], "medium": urls["medium"]}


def synset_payload(synset) -> dict:
    return {
        "wnid": synset.wnid,
        "lemmas": synset.lemmas,
        "gloss": synset.gloss,
        "read_more": f"https://en.wikipedia.org/w/index.php?search={quote(synset.lemmas[0])}",
    }


# A synset's accepted examples, kept per process this long: they change slowly (a candidate is accepted now
# and then). With a campaign of 1,000 synsets a 30 s life meant a miss on most next-HITs; a miss is read in the
# same statement as the HIT's items (below), so it costs no round trip of its own.
EXAMPLES_CACHE_SECONDS = 300.0
_examples_cache: dict[int, tuple[float, list[str]]] = {}


def _cached_examples(synset_id: int) -> list[str] | None:
    cached = _examples_cache.get(synset_id)
    if cached is None or time.monotonic() - cached[0] >= EXAMPLES_CACHE_SECONDS:
        return None
    return cached[1]


def _payload_sql(with_examples: bool) -> str:
    """The HIT's items (id, thumbnail, medium) in position order, then — ``with_examples`` — up to EXAMPLES
    accepted thumbnails of its synset (rows with a NULL id), best first: one round trip, written once for
    PostgreSQL and SQLite (the ORM's version cost more Python to compile than the rest of the payload)."""
    q = connection.ops.quote_name
    item, candidate, image = (q(model._meta.db_table) for model in (HitItem, Candidate, Image))
    sql = (
        f"SELECT hi.id, im.thumbnail, im.medium, 0 AS part, hi.position AS pos FROM {item} hi "
        f"JOIN {candidate} c ON c.id = hi.candidate_id JOIN {image} im ON im.id = c.image_id WHERE hi.hit_id = %s"
    )
    if with_examples:
        sql += (
            " UNION ALL SELECT * FROM (SELECT CAST(NULL AS BIGINT), im.thumbnail, NULL, 1, "
            "ROW_NUMBER() OVER (ORDER BY c.posterior DESC, c.id) "
            f"FROM {candidate} c JOIN {image} im ON im.id = c.image_id WHERE c.synset_id = %s AND c.state = %s "
            f"ORDER BY c.posterior DESC, c.id LIMIT {EXAMPLES}) AS examples"
        )
    return sql + " ORDER BY part, pos"


def hit_payload(*, hit: Hit, request=None) -> dict:
    """The HIT as the worker's page and the API show it: its items as plain values (id and the two image
    URLs; 24 items read as HitItem → Candidate → Image instances made 72 model instances per request for three
    strings each) and a few accepted examples of its synset."""
    examples = _cached_examples(hit.synset_id)
    params = [hit.id] if examples is not None else [hit.id, hit.synset_id, Candidate.State.ACCEPTED.value]
    with connection.cursor() as cursor:
        cursor.execute(_payload_sql(examples is None), params)
        rows = cursor.fetchall()
    items = [row for row in rows if row[0] is not None]
    if examples is None:
        if len(_examples_cache) > 20_000:
            _examples_cache.clear()
        examples = media_urls([row[1] for row in rows if row[0] is None])
        _examples_cache[hit.synset_id] = (time.monotonic(), examples)
    urls = media_urls([name for _, thumbnail, medium, _, _ in items for name in (thumbnail, medium)])
    return {
        "id": hit.id,
        "campaign": hit.campaign_id,
        "expires_at": hit.expires_at,
        "synset": synset_payload(hit.synset),
        "examples": examples,
        "items": [{"id": row[0], "thumbnail": urls[2 * n], "medium": urls[2 * n + 1]} for n, row in enumerate(items)],
    }


def quiz_payload(*, attempt: QuizAttempt, request=None) -> dict:
    golds = GoldItem.objects.filter(id__in=attempt.items).select_related("candidate__image", "candidate__synset")
    by_id = {g.id: g for g in golds}
    return {
        "id": attempt.id,
        "campaign": attempt.campaign_id,
        "pass_mark": attempt.campaign.quiz_pass_mark,
        # In a campaign with a quiz per synset: the synset this quiz qualifies for (else null).
        "synset": synset_payload(attempt.synset) if attempt.synset_id else None,
        "items": [
            {
                "id": gid,
                "synset": synset_payload(by_id[gid].candidate.synset),
                **display_urls(by_id[gid].candidate.image),
            }
            for gid in attempt.items
        ],
    }


ADJUSTMENTS_SHOWN = 20


def worker_stats(*, worker: User) -> dict:
    profile = WorkerProfile.objects.filter(user=worker).first() or WorkerProfile(user=worker)
    recent = list(Vote.objects.filter(worker=worker).order_by("-id").values_list("response_ms", flat=True)[:500])
    earned = LedgerEntry.objects.filter(worker=worker).aggregate(
        total=Sum("amount"), unpaid=Sum("amount", filter=Q(paid=False))
    )
    return {
        "username": worker.username,
        "hits_done": profile.hits_done,
        "answers": profile.answers,
        "gold_answered": profile.gold_answered,
        "gold_accuracy": profile.gold_accuracy,
        "agreement": profile.agreement,
        "median_seconds_per_image": statistics.median(recent) / 1000 if recent else None,
        "earnings": str(Decimal(earned["total"] or 0).quantize(Decimal("0.01"))),
        "unpaid": str(Decimal(earned["unpaid"] or 0).quantize(Decimal("0.01"))),  # not yet approved for payment
        # The bonuses and corrections an admin added, newest first, with the note that says why: a total that moved
        # without a HIT is explained where the worker reads it.
        "adjustments": [
            {"kind": kind, "amount": str(amount), "note": note, "created": created.isoformat()}
            for kind, amount, note, created in LedgerEntry.objects.filter(worker=worker)
            .exclude(kind=LedgerEntry.Kind.HIT)
            .order_by("-id")
            .values_list("kind", "amount", "note", "created")[:ADJUSTMENTS_SHOWN]
        ],
        "blocked": profile.blocked,
        "blocked_reason": profile.blocked_reason,
        "qualifications": [
            {
                "campaign": q.campaign_id,
                "campaign_name": q.campaign.name,
                "status": q.status,
                "blocked_reason": q.blocked_reason,
            }
            for q in Qualification.objects.filter(worker=worker).select_related("campaign")
        ],
    }


def worker_campaigns(*, worker: User) -> list[dict]:
    """Running campaigns with the worker's qualification status in each, and whether the campaign is
    ``complete`` (every synset has reached its target, so the scheduler hands out no more verification HITs;
    box work on its accepted images may remain) and whether it has a quiz to qualify with (``quiz_ready``: gold
    items in its synsets)."""
    from django.db.models import Count, Exists, OuterRef

    from annotation.models import Campaign, CampaignSynset

    statuses, reasons = {}, {}
    for campaign_id, status, reason in Qualification.objects.filter(worker=worker).values_list(
        "campaign_id", "status", "blocked_reason"
    ):
        statuses[campaign_id], reasons[campaign_id] = status, reason
    short = CampaignSynset.objects.filter(campaign_id=OuterRef("id"), accepted__lt=OuterRef("target_per_synset"))
    gold = GoldItem.objects.filter(synset__campaigns=OuterRef("id"))  # what quiz_start draws from
    campaigns = (
        Campaign.objects.filter(state=Campaign.State.RUNNING)
        .annotate(n=Count("campaign_synsets"), short=Exists(short), quiz_ready=Exists(gold))
        .order_by("id")
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "synsets": c.n,
            "status": statuses.get(c.id, Qualification.Status.TRIAL),
            "blocked_reason": reasons.get(c.id, ""),
            "boxes": c.boxes_enabled,
            "complete": c.n > 0 and not c.short,
            "quiz_ready": c.quiz_ready,
        }
        for c in campaigns
    ]


def hit_may_come(*, worker: User, campaign: Campaign) -> bool:
    """After next-HIT found nothing for this worker: whether something may come soon — a candidate of a synset
    still short of its target that the worker has never been shown and that is still open, i.e. leased to
    others right now (a lease that expires gives it back; a vote short of a decision asks for another) or
    awaiting consensus. False when the worker has seen everything left, or every synset has reached its
    target: then there is no point in looking again. In a campaign with a quiz per synset, only the synsets
    whose quiz the worker passed count."""
    from annotation.services import quiz  # services import the selectors

    synsets = CampaignSynset.objects.filter(campaign=campaign, accepted__lt=campaign.target_per_synset)
    if campaign.quiz_per_synset:
        synsets = synsets.filter(synset_id__in=quiz.passed_synset_ids(worker_id=worker.id, campaign_id=campaign.id))
    seen = HitItem.objects.filter(worker_id=worker.id, candidate_id=OuterRef("pk"))
    gold = GoldItem.objects.filter(candidate_id=OuterRef("pk"))
    return (
        Candidate.objects.filter(
            synset_id__in=synsets.values("synset_id"),
            state__in=[Candidate.State.NEW, Candidate.State.VOTING],
            votes_count__lt=campaign.max_votes,
        )
        .exclude(Exists(gold))
        .exclude(Exists(seen))
        .exists()
    )
