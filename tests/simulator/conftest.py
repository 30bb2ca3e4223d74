from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import Campaign
from annotation.services import demo as demo_service
from workers.roles import Role
from workers.services import account_create


@pytest.fixture
def make_demo_campaign(transactional_db, settings, tmp_path):
    """A running demo campaign over ``wnids``: demo images (seed 3) drawn into this test's folders and imported,
    gold taken from their truth, owned by a new researcher."""

    def make(*, name: str, wnids: list[str], per_synset: int) -> Campaign:
        settings.DATA_DIR = tmp_path / "data"
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.IMAGE_IMPORT_WORKERS = 1
        call_command("make_demo_images", "--seed", "3", "--per-synset", str(per_synset), "--no-progress",
                     stdout=StringIO())  # fmt: skip
        owner = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
        campaign, created = demo_service.demo_campaign_ensure(owner=owner, name=name, wnids=wnids)
        assert created and campaign.state == Campaign.State.RUNNING
        return campaign

    return make
