"""One small seeded world for the security tests, with named actors (healthchecks' style) and objects owned
by each: ``researcher`` owns the running campaign ``circles`` (gold, candidates accepted / rejected / still
voting, boxes enabled, an image import, a finished dataset version); ``other_researcher`` owns ``triangles``;
``worker`` is qualified in ``circles`` and holds an open HIT, an open box-drawing task and an unanswered
quiz in ``triangles``; ``other_worker`` is qualified nowhere; ``admin`` owns nothing and may see all."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from annotation.models import Candidate, ImportBatch, ImportItem
from annotation.services import boxes, hits, quiz
from annotation.services.campaigns import campaign_create, campaign_set_state, gold_item_create
from export.models import DatasetVersion
from tests.annotation.hits.conftest import make_candidates, qualify
from workers.models import LedgerEntry
from workers.roles import Role
from workers.services import account_create

CIRCLE, TRIANGLE, SQUARE = "n13873502", "n13879320", "n13878634"
ACTORS = ["anonymous", "worker", "other_worker", "researcher", "other_researcher", "admin"]
ROLES = {"worker": Role.WORKER, "other_worker": Role.WORKER, "researcher": Role.RESEARCHER,
         "other_researcher": Role.RESEARCHER, "admin": Role.ADMIN}  # fmt: skip


@pytest.fixture
def world(db, settings, tmp_path) -> SimpleNamespace:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    users = {name: account_create(username=name, password=f"pw-{name}-123", role=role) for name, role in ROLES.items()}
    worker, researcher = users["worker"], users["researcher"]

    triangles = campaign_create(owner=users["other_researcher"], name="triangles", wnids=[TRIANGLE], gold_rate=0.0)
    triangles = campaign_set_state(campaign=triangles, state="running")
    circles = campaign_create(
        owner=researcher, name="circles", wnids=[CIRCLE, SQUARE], boxes_enabled=True, gold_rate=0.0,
        images_per_hit=4, min_votes=2, max_votes=6, quiz_size=2,
    )  # fmt: skip
    accepted, also_accepted, rejected, *voting = make_candidates(CIRCLE, 10)
    Candidate.objects.filter(id__in=[accepted.id, also_accepted.id]).update(state="accepted", posterior=0.995)
    Candidate.objects.filter(id=rejected.id).update(state="rejected", posterior=0.004)
    Candidate.objects.filter(id__in=[c.id for c in voting[:3]]).update(state="voting", posterior=0.6)
    gold = [gold_item_create(candidate=c, present=i % 2 == 0) for i, c in enumerate(make_candidates(SQUARE, 2))]
    gold += [gold_item_create(candidate=c, present=True) for c in make_candidates(TRIANGLE, 2)]
    circles = campaign_set_state(campaign=circles, state="running")
    qualify(worker, circles)
    boxes.box_jobs_enter(campaign=circles)

    hit = hits.hit_next(worker=worker, campaign=circles)
    box_task = boxes.box_task_next(worker=worker, campaign=circles, kind="draw")
    attempt = quiz.quiz_start(worker=worker, campaign=triangles)
    LedgerEntry.objects.create(worker=worker, kind=LedgerEntry.Kind.HIT, amount="0.05")

    batch = ImportBatch.objects.create(synset_id=int(CIRCLE[1:]), source="url", created_by=researcher, total=1)
    ImportItem.objects.create(batch=batch, name="https://example.org/circle.jpg")
    version = _done_version(researcher, circles, settings.EXPORT_ROOT)
    return SimpleNamespace(
        users=users, circles=circles, triangles=triangles, hit=hit, box_task=box_task, attempt=attempt,
        batch=batch, version=version, gold=gold, voting=voting[0], accepted=accepted, rejected=rejected,
        image=accepted.image,
    )  # fmt: skip


def _done_version(user, campaign, root: str) -> DatasetVersion:
    """A finished dataset version with an empty manifest (the download path streams it; its content is the
    export tests' business)."""
    from pathlib import Path

    version = DatasetVersion.objects.create(
        name="circles", version=1, options={}, created_by=user, status=DatasetVersion.Status.DONE,
        snapshot_at=timezone.now(), finished=timezone.now(), progress=1.0,
    )  # fmt: skip
    version.campaigns.add(campaign)
    version.output_dir = f"dataset-{version.id}"
    version.save(update_fields=["output_dir"])
    folder = Path(root) / version.output_dir
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("[\n]\n")
    return version


def client_for(user, **defaults) -> Client:
    client = Client(**defaults)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def clients(world) -> dict[str, Client]:
    return {actor: client_for(world.users.get(actor)) for actor in ACTORS}
