import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import Campaign
from annotation.services import demo as demo_service
from annotation.services import hits
from workers.roles import Role
from workers.services import account_create


@pytest.fixture
def make_demo_campaign(transactional_db, settings, tmp_path):
    """A running demo campaign over ``wnids``: demo images (seed 3) drawn into this test's folders and imported,
    gold taken from their truth, owned by a new researcher."""

    def make(
        *, name: str, wnids: list[str], per_synset: int, gold_share: float = demo_service.DEMO_GOLD_SHARE
    ) -> Campaign:
        settings.DATA_DIR = tmp_path / "data"
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.IMAGE_IMPORT_WORKERS = 1
        call_command("make_demo_images", "--seed", "3", "--per-synset", str(per_synset), "--no-progress",
                     stdout=StringIO())  # fmt: skip
        owner = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
        campaign, created = demo_service.demo_campaign_ensure(owner=owner, name=name, wnids=wnids,
                                                              gold_share=gold_share)  # fmt: skip
        assert created and campaign.state == Campaign.State.RUNNING
        return campaign

    return make


def fresh_database(settings) -> None:
    """Empty tables with their id sequences restarted, and a cache namespace of its own (the consensus
    model's pooled figures and refit locks are cached by campaign id): a seeded run then gets the same ids,
    hence the same server draws (annotation/services/draws.py)."""
    call_command("flush", interactive=False, verbosity=0)
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def repeatable(transactional_db, settings, monkeypatch):
    """As ``simulate_crowd --repeatable`` on a fresh database: eager Celery, the scheduler's synset counts
    read on every lease (its 2 s per-process cache follows the wall clock), ids from 1. With one client the
    same seed then gives the same run. The monkeypatch puts the scheduler's cache back afterwards; the
    celery_eager fixture the eager setting."""
    monkeypatch.setattr(hits, "NEED_CACHE_SECONDS", hits.NEED_CACHE_SECONDS)
    demo_service.simulation_repeatable()
    fresh_database(settings)
