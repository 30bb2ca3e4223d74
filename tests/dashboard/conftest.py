"""A small seeded campaign for the dashboard tests: two shape synsets (circle with four candidates, triangle
with none), two workers who each submit one HIT through the real hit_submit, then fixed consensus states."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from annotation.models import Candidate
from annotation.services import hits, refit, rollups
from tests.annotation.hits.conftest import SHAPES, make_candidates, qualify
from workers.models import WorkerProfile
from workers.roles import Role
from workers.services import account_create

CIRCLE, TRIANGLE = SHAPES[0], SHAPES[1]


@pytest.fixture
def researcher(db):
    return account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)


@pytest.fixture
def other_researcher(db):
    return account_create(username="other_researcher", password="pw-researcher-2", role=Role.RESEARCHER)


@pytest.fixture
def admin(db):
    return account_create(username="admin", password="pw-admin-1", role=Role.ADMIN)


@pytest.fixture
def worker(db):
    return account_create(username="worker", password="pw-worker-1", role=Role.WORKER)


@pytest.fixture
def other_worker(db):
    return account_create(username="other_worker", password="pw-worker-2", role=Role.WORKER)


def submit(worker, campaign, answers: list[str], ms: int, key: str):
    hit = hits.hit_next(worker=worker, campaign=campaign)
    items = list(hit.items.order_by("candidate_id"))
    payload = [{"item": item.id, "answer": a, "ms": ms} for item, a in zip(items, answers, strict=True)]
    hits.hit_submit(worker=worker, hit_id=hit.id, answers=payload, idempotency_key=key)
    return hit


@pytest.fixture
def seeded(researcher, worker, other_worker, monkeypatch):
    """``worker`` answers present ×4 at 1 s each; ``other_worker`` present, present, absent, can't tell at
    0.5 s each; both in the same minute (``now``). Then candidates 1-2 are accepted (0.99, 0.97), 3 rejected
    (0.01), 4 still voting; counters and candidate figures recounted."""
    from annotation.services.campaigns import campaign_create, campaign_set_state

    campaign = campaign_create(
        owner=researcher, name="shapes", wnids=[CIRCLE, TRIANGLE], target_per_synset=2, images_per_hit=4,
        gold_rate=0.0, min_votes=2, max_votes=4,
    )  # fmt: skip
    campaign = campaign_set_state(campaign=campaign, state="running")
    candidates = make_candidates(CIRCLE, 4)
    qualify(worker, campaign)
    qualify(other_worker, campaign)
    now = timezone.now().replace(second=30, microsecond=0)
    if now > timezone.now():
        now -= timedelta(minutes=1)
    monkeypatch.setattr(rollups.timezone, "now", lambda: now)
    first = submit(worker, campaign, ["present"] * 4, 1000, "seed-key-worker-1")
    second = submit(other_worker, campaign, ["present", "present", "absent", "cant_tell"], 500, "seed-key-other-1")
    monkeypatch.undo()
    for candidate, (state, posterior) in zip(
        candidates, [("accepted", 0.99), ("accepted", 0.97), ("rejected", 0.01), ("voting", 0.6)], strict=True
    ):
        Candidate.objects.filter(id=candidate.id).update(state=state, posterior=posterior)
    refit.campaign_counters_recount(campaign=campaign)
    rollups.synset_activity_recount(campaign_id=campaign.id)
    WorkerProfile.objects.filter(user=worker).update(agreement=0.95)
    WorkerProfile.objects.filter(user=other_worker).update(agreement=0.45)
    return SimpleNamespace(
        campaign=campaign, candidates=candidates, now=now, hits=(first, second), worker=worker,
        other_worker=other_worker, researcher=researcher,
    )  # fmt: skip


def campaign_form(client, campaign, **changes) -> dict:
    """The Django admin's campaign change page's own form as the browser would send it back, with ``changes``."""
    form = client.get(f"/admin/annotation/campaign/{campaign.id}/change/").context["adminform"].form
    data = {name: form[name].value() for name in form.fields} | changes
    data = {key: value for key, value in data.items() if value is not None and value is not False}
    return data | {"campaign_synsets-TOTAL_FORMS": 0, "campaign_synsets-INITIAL_FORMS": 0}  # the read-only inline
