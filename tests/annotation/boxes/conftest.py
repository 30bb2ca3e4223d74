import pytest
from django.contrib.auth.models import User

from annotation.models import BoxJob, Candidate
from annotation.services import boxes
from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.annotation.hits.conftest import make_candidates, qualify
from workers.roles import Role
from workers.services import account_create

CIRCLE = "n13873502"


@pytest.fixture
def researcher(db) -> User:
    return account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)


@pytest.fixture
def crowd(db) -> list[User]:
    """Named workers: crowd[0] draws, the others verify."""
    return [account_create(username=f"worker{i}", password=f"pw-worker-{i}x", role=Role.WORKER) for i in range(6)]


@pytest.fixture
def box_campaign(researcher, crowd):
    """A running campaign with boxes enabled and 3 accepted candidates (images 640x480), every worker
    qualified, no gold."""
    campaign = campaign_create(
        owner=researcher, name="circles", wnids=[CIRCLE], boxes_enabled=True, gold_rate=0.0, images_per_hit=10
    )
    candidates = make_candidates(CIRCLE, 4)
    Candidate.objects.filter(id__in=[c.id for c in candidates[:3]]).update(state=Candidate.State.ACCEPTED)
    campaign = campaign_set_state(campaign=campaign, state="running")
    for worker in crowd:
        qualify(worker, campaign)
    boxes.box_jobs_enter(campaign=campaign)
    return campaign


def job_of(item) -> BoxJob:
    return BoxJob.objects.get(id=item.job_id)


def answer_all(task, answer: str, ms: int = 700) -> list[dict]:
    return [{"item": item.id, "answer": answer, "ms": ms} for item in task.items.order_by("position")]


_keys = iter(range(10**9))


def key() -> str:
    return f"key-{next(_keys):08d}"
