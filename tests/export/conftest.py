"""A small exported world: the demo shapes (8 images per synset) imported into a private media folder, a
campaign over five non-overlapping shapes whose candidates are accepted with posteriors, votes from three
workers (and gold answers), their ledger entries, and one image labelled for two synsets."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Candidate, GoldItem, Hit, Vote
from annotation.services.campaigns import campaign_create
from export import services
from export.models import DatasetVersion
from workers.models import LedgerEntry
from workers.roles import Role
from workers.services import account_create

CIRCLE, TRIANGLE, SQUARE, HEXAGON, STAR = "n13873502", "n13879320", "n13878634", "n13882276", "n13881644"
WNIDS = [CIRCLE, TRIANGLE, SQUARE, HEXAGON, STAR]


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """DATA_DIR shared by the session: make_demo_images draws the pictures once and reuses them."""
    return tmp_path_factory.mktemp("export-data")


@pytest.fixture
def export_root(settings, tmp_path, demo_dir) -> Path:
    settings.DATA_DIR = demo_dir
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_IMPORT_WORKERS = 1
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    return tmp_path / "exports"


@pytest.fixture
def admin(db):
    return account_create(username="admin", password="pw-admin-1", role=Role.ADMIN)


@pytest.fixture
def researcher(db):
    return account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)


@pytest.fixture
def other_researcher(db):
    return account_create(username="other", password="pw-other-1", role=Role.RESEARCHER)


@pytest.fixture
def worker(db):
    return account_create(username="worker", password="pw-worker-1", role=Role.WORKER)


def _posterior(candidate_id: int) -> float:
    """A fixed, varied posterior per candidate (0.9 to 0.999)."""
    return 0.9 + (int(hashlib.sha256(str(candidate_id).encode()).hexdigest()[:4], 16) % 1000) / 10_000


@pytest.fixture
def campaign(db, export_root, researcher):
    call_command("make_demo_images", "--per-synset", "8", "--no-progress", stdout=StringIO(), stderr=StringIO())
    campaign = campaign_create(owner=researcher, name="Shapes", wnids=WNIDS, gold_rate=0.0, min_votes=2)
    workers = [account_create(username=f"crowd{i}", password="pw-crowd-123", role=Role.WORKER) for i in range(3)]
    candidates = list(Candidate.objects.filter(synset_id__in=[int(w[1:]) for w in WNIDS]).order_by("id"))
    gold_candidate, rejected, *accepted = candidates
    GoldItem.objects.create(candidate=gold_candidate, synset_id=gold_candidate.synset_id, present=True)
    Candidate.objects.filter(id=rejected.id).update(state="rejected", posterior=0.01, model_version="ds-1/em")
    for c in accepted:
        Candidate.objects.filter(id=c.id).update(state="accepted", posterior=_posterior(c.id), model_version="ds-1/em")
    # One image is also a triangle, with a lower posterior: two labels, primary stays its own synset.
    double = next(c for c in accepted if c.synset_id == int(CIRCLE[1:]))
    Candidate.objects.create(
        image_id=double.image_id, synset_id=int(TRIANGLE[1:]), state="accepted", posterior=0.5, model_version="ds-1/em"
    )
    start = timezone.now() - timedelta(days=2)
    for i, w in enumerate(workers):
        hit = Hit.objects.create(
            campaign=campaign, synset_id=int(CIRCLE[1:]), worker=w, status="submitted", expires_at=start
        )
        votes = [
            Vote(candidate=c, worker=w, hit=hit, answer=1 if (c.id + i) % 5 else 0, response_ms=1500 + 100 * i)
            for c in accepted[:20]
        ]
        gold_answer = 0 if i == 2 else 1
        votes.append(
            Vote(candidate=gold_candidate, worker=w, hit=hit, answer=gold_answer, response_ms=2000, is_gold=True)
        )
        Vote.objects.bulk_create(votes)
        LedgerEntry.objects.create(worker=w, kind="hit", amount=Decimal("0.10"), hit=hit)
    return campaign


def build(user, campaign, *, name: str = "shapes", options: dict | None = None, capture=None) -> DatasetVersion:
    """Create a version and run its build the way production does: the job enqueued on commit (eager)."""
    with capture(execute=True):
        version = services.dataset_version_create(
            user=user, name=name, campaign_ids=[campaign.id], options=options or {}, notes="Test export."
        )
    version.refresh_from_db()
    assert version.status == "done", version.error
    return version


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
