"""What a worker sees. Gold items are indistinguishable here: every item is a HitItem id and image URLs."""

import statistics
import time
from decimal import Decimal
from urllib.parse import quote

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db.models import Sum

from annotation.models import Candidate, GoldItem, Hit, HitItem, QuizAttempt, Vote
from annotation.selectors.images import image_urls
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
# and then), and reading them on every next-HIT cost a query with a join per request.
EXAMPLES_CACHE_SECONDS = 30.0
_examples_cache: dict[int, tuple[float, list[str]]] = {}


def synset_examples(*, synset_id: int, request=None) -> list[str]:
    now = time.monotonic()
    cached = _examples_cache.get(synset_id)
    if cached is None or now - cached[0] >= EXAMPLES_CACHE_SECONDS:
        thumbnails = (
            Candidate.objects.filter(synset_id=synset_id, state=Candidate.State.ACCEPTED)
            .order_by("-posterior", "id")
            .values_list("image__thumbnail", flat=True)[:EXAMPLES]
        )
        if len(_examples_cache) > 20_000:
            _examples_cache.clear()
        cached = _examples_cache[synset_id] = (now, [default_storage.url(name) for name in thumbnails])
    return cached[1]


def hit_payload(*, hit: Hit, request=None) -> dict:
    """The HIT as the worker's page and the API show it. The items are read as plain values (id and the two
    image paths), not as HitItem → Candidate → Image instances: 24 items made 72 model instances per
    request for three strings each."""
    items = (
        HitItem.objects.filter(hit_id=hit.id)
        .order_by("position")
        .values_list("id", "candidate__image__thumbnail", "candidate__image__medium")
    )
    url = default_storage.url
    return {
        "id": hit.id,
        "campaign": hit.campaign_id,
        "expires_at": hit.expires_at,
        "synset": synset_payload(hit.synset),
        "examples": synset_examples(synset_id=hit.synset_id, request=request),
        "items": [
            {"id": item_id, "thumbnail": url(thumbnail), "medium": url(medium)} for item_id, thumbnail, medium in items
        ],
    }


def quiz_payload(*, attempt: QuizAttempt, request=None) -> dict:
    golds = GoldItem.objects.filter(id__in=attempt.items).select_related("candidate__image", "candidate__synset")
    by_id = {g.id: g for g in golds}
    return {
        "id": attempt.id,
        "campaign": attempt.campaign_id,
        "pass_mark": attempt.campaign.quiz_pass_mark,
        "items": [
            {
                "id": gid,
                "synset": synset_payload(by_id[gid].candidate.synset),
                **display_urls(by_id[gid].candidate.image),
            }
            for gid in attempt.items
        ],
    }


def worker_stats(*, worker: User) -> dict:
    profile = WorkerProfile.objects.filter(user=worker).first() or WorkerProfile(user=worker)
    recent = list(Vote.objects.filter(worker=worker).order_by("-id").values_list("response_ms", flat=True)[:500])
    earned = LedgerEntry.objects.filter(worker=worker).aggregate(total=Sum("amount"))["total"]
    return {
        "username": worker.username,
        "hits_done": profile.hits_done,
        "answers": profile.answers,
        "gold_answered": profile.gold_answered,
        "gold_accuracy": profile.gold_accuracy,
        "agreement": profile.agreement,
        "median_seconds_per_image": statistics.median(recent) / 1000 if recent else None,
        "earnings": str(Decimal(earned or 0).quantize(Decimal("0.01"))),
        "blocked": profile.blocked,
        "qualifications": [
            {"campaign": q.campaign_id, "campaign_name": q.campaign.name, "status": q.status}
            for q in Qualification.objects.filter(worker=worker).select_related("campaign")
        ],
    }


def worker_campaigns(*, worker: User) -> list[dict]:
    """Running campaigns with the worker's qualification status in each."""
    from django.db.models import Count

    from annotation.models import Campaign

    statuses = dict(Qualification.objects.filter(worker=worker).values_list("campaign_id", "status"))
    campaigns = (
        Campaign.objects.filter(state=Campaign.State.RUNNING).annotate(n=Count("campaign_synsets")).order_by("id")
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "synsets": c.n,
            "status": statuses.get(c.id, Qualification.Status.TRIAL),
            "boxes": c.boxes_enabled,
        }
        for c in campaigns
    ]
