import hashlib
import itertools

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from annotation.models import Campaign, CampaignSynset, Candidate, Hit, Image, Vote
from annotation.services.campaigns import campaign_create, campaign_set_state, gold_item_create
from workers.models import Qualification
from workers.roles import Role
from workers.services import account_create

SHAPES = ["n13873502", "n13879320", "n13878634"]  # circle, triangle, square
_serial = itertools.count()


def campaign_with_votes(make_campaign, **policy) -> Campaign:
    """A running campaign over circle with 12 candidates, each answered "present" by three workers (their HITs
    submitted, the synset's vote counter as the submits keep it): enough for a refit to decide them."""
    campaign = make_campaign(wnids=SHAPES[:1], candidates=12, min_votes=3, max_votes=7, **policy)
    candidates = list(Candidate.objects.order_by("id"))
    for i in range(3):
        worker = account_create(username=f"crowd{i}", password="pw-crowd-123", role=Role.WORKER)
        hit = Hit.objects.create(
            campaign=campaign, synset_id=candidates[0].synset_id, worker=worker, status="submitted",
            expires_at=timezone.now(),
        )  # fmt: skip
        Vote.objects.bulk_create(
            Vote(candidate=c, worker=worker, hit=hit, answer=1, response_ms=900) for c in candidates
        )
    CampaignSynset.objects.filter(campaign=campaign).update(votes=36)  # as the submits count them
    return campaign


def make_image() -> Image:
    """An Image row without a file: the scheduler and submit paths never open image files."""
    n = next(_serial)
    digest = hashlib.sha256(f"test-image-{n}".encode()).hexdigest()
    return Image.objects.create(
        sha256=digest,
        file=f"images/{digest}.jpg",
        thumbnail=f"thumbs/{digest}.webp",
        medium=f"medium/{digest}.webp",
        width=640,
        height=480,
        format="JPEG",
        byte_size=1000,
        phash=n,
    )


def make_candidates(wnid: str, count: int) -> list[Candidate]:
    synset_id = int(wnid[1:])
    return [Candidate.objects.create(image=make_image(), synset_id=synset_id) for _ in range(count)]


@pytest.fixture
def researcher(db) -> User:
    return account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)


@pytest.fixture
def worker(db) -> User:
    return account_create(username="worker", password="pw-worker-1", role=Role.WORKER)


@pytest.fixture
def other_worker(db) -> User:
    return account_create(username="other_worker", password="pw-worker-2", role=Role.WORKER)


@pytest.fixture
def make_campaign(researcher):
    def make(*, wnids=SHAPES[:1], candidates=30, running=True, **policy):
        policy = {"gold_rate": 0.0, "images_per_hit": 10, **policy}
        # "shapes", then "shapes 2", ...: one researcher's campaigns have different names.
        earlier = Campaign.objects.filter(owner=researcher).count()
        name = "shapes" if not earlier else f"shapes {earlier + 1}"
        campaign = campaign_create(owner=researcher, name=name, wnids=list(wnids), **policy)
        for wnid in wnids:
            make_candidates(wnid, candidates)
        if running:
            campaign = campaign_set_state(campaign=campaign, state="running")
        return campaign

    return make


def qualify(worker: User, campaign) -> None:
    Qualification.objects.update_or_create(
        worker=worker, campaign=campaign, defaults={"status": Qualification.Status.QUALIFIED}
    )


def make_gold(wnid: str, count: int, *, present: bool = True) -> list:
    return [gold_item_create(candidate=c, present=present) for c in make_candidates(wnid, count)]


def answers_for(hit, answer: str = "present", ms: int = 900) -> list[dict]:
    return [{"item": item.id, "answer": answer, "ms": ms} for item in hit.items.order_by("position")]
