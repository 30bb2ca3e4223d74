"""A researcher's campaigns have different names: pages, the dashboard and exports show campaigns by name, and
two named alike could not be told apart. Names compare without case and without surrounding spaces."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from annotation.errors import Conflict
from annotation.models import Campaign
from annotation.services.campaigns import campaign_create
from tests.concurrency import another_connection_waits, while_held_open
from tests.dashboard.conftest import CIRCLE, TRIANGLE
from tests.wordnet_snapshot import plane_figures_import


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def _duplicate(existing: Campaign) -> str:
    return f'You already have a campaign named "{existing.name}" (campaign {existing.id}); give this one another name.'


@pytest.mark.django_db
@pytest.mark.parametrize("again", ["Shapes", "shapes", "  SHAPES "])
def test_a_second_campaign_of_the_same_name_is_refused_with_the_first_named(api, researcher, again):
    first = campaign_create(owner=researcher, name="Shapes", wnids=[CIRCLE])

    response = api.post("/api/v1/campaigns/", {"name": again, "wnids": [TRIANGLE]}, format="json")

    assert response.status_code == 409, response.content
    assert response.json() == {"detail": _duplicate(first), "code": "name_taken"}
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Shapes"]


@pytest.mark.django_db
def test_a_name_is_stored_without_surrounding_spaces_and_other_researchers_may_use_it(
    api, researcher, other_researcher
):
    assert api.post("/api/v1/campaigns/", {"name": "  Shapes ", "wnids": [CIRCLE]}, format="json").status_code == 201
    theirs = campaign_create(owner=other_researcher, name="shapes", wnids=[TRIANGLE])

    assert Campaign.objects.get(owner=researcher).name == "Shapes"
    assert theirs.name == "shapes"


@pytest.mark.django_db
def test_the_admin_cannot_rename_a_campaign_to_a_name_its_owner_has(client, admin, researcher):
    campaign_create(owner=researcher, name="Shapes", wnids=[CIRCLE])
    other = campaign_create(owner=researcher, name="Circles", wnids=[TRIANGLE])
    client.force_login(admin)
    url = f"/admin/annotation/campaign/{other.id}/change/"
    form = client.get(url).context["adminform"].form
    data = {**{name: form[name].value() for name in form.fields}, "name": " shapes"}
    data = {key: "" if value is None else value for key, value in data.items()}
    inline = {"campaign_synsets-TOTAL_FORMS": "0", "campaign_synsets-INITIAL_FORMS": "0"}

    response = client.post(url, {**data, **inline})

    assert response.status_code == 200  # the form again, with the error
    assert "Its owner already has a campaign of this name" in response.content.decode()
    other.refresh_from_db()
    assert other.name == "Circles"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two creates at once: PostgreSQL (SQLite runs one)")
def test_two_creates_of_one_name_at_once_make_one_campaign_and_a_sentence(researcher):
    """Over different synsets, so that nothing but the name makes the two creates meet."""

    plane_figures_import()  # a flushed database

    first, second = while_held_open(
        lambda: campaign_create(owner=researcher, name="Shapes", wnids=[CIRCLE]),
        lambda: campaign_create(owner=researcher, name="shapes ", wnids=[TRIANGLE]),
        until=another_connection_waits,
    )

    assert isinstance(first, Campaign), first
    assert isinstance(second, Conflict), second
    assert second.message == _duplicate(first)
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Shapes"]


BEFORE = [("annotation", "0019_reward_per_hit_bounds")]
AFTER = [("annotation", "0020_campaign_owner_name_unique")]


@pytest.mark.usefixtures("back_to_latest")
def test_the_migration_renames_existing_duplicates_keeping_the_oldest_name():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User, Campaign = old.get_model("auth", "User"), old.get_model("annotation", "Campaign")
    owner, other = User.objects.create(username="owner-n"), User.objects.create(username="other-n")
    names = [(owner, "Shapes"), (owner, " shapes"), (owner, "Shapes (2)"), (owner, "SHAPES"), (other, "Shapes")]
    ids = [Campaign.objects.create(name=name, owner=user).id for user, name in names]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps.get_model("annotation", "Campaign")
    renamed = dict(new.objects.filter(id__in=ids).values_list("id", "name"))
    assert [renamed[i] for i in ids] == ["Shapes", "shapes (3)", "Shapes (2)", "SHAPES (4)", "Shapes"]
