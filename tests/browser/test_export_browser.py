"""A researcher exports a dataset version from the campaign dashboard in Debian's Chromium: a bad split gets
the service's sentence and creates nothing; a good one is built by the (eager) Celery job, listed as done and
downloaded as a tar that holds the ImageNet layout and COCO, and nothing of the formats left out. The campaign
has reached its targets, which the dashboard says above its progress."""

import io
import re
import tarfile

import pytest
from playwright.sync_api import expect

from annotation.models import Candidate
from annotation.services import refit
from annotation.services.campaigns import campaign_create, campaign_set_state
from export.models import DatasetVersion
from tests.browser.conftest import RESEARCHER_PASSWORD, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CIRCLE, TRIANGLE = "n13873502", "n13879320"


@pytest.fixture
def accepted_campaign(settings, tmp_path, demo_images):
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    researcher = demo_images(4)
    campaign = campaign_create(
        owner=researcher, name="Circles and triangles", wnids=[CIRCLE, TRIANGLE], gold_rate=0.0, target_per_synset=4
    )
    Candidate.objects.filter(synset_id__in=[int(CIRCLE[1:]), int(TRIANGLE[1:])]).update(
        state=Candidate.State.ACCEPTED, posterior=0.995, model_version="ds-1/em"
    )
    refit.campaign_counters_recount(campaign=campaign)
    return campaign_set_state(campaign=campaign, state="running")


def test_researcher_exports_a_version_from_the_dashboard_and_downloads_it(live_server, page, accepted_campaign):
    signed_in(page, live_server.url, "researcher", RESEARCHER_PASSWORD)
    page.goto(f"{live_server.url}/research/{accepted_campaign.id}/")
    # Both synsets have their 4 accepted images: the dashboard says the campaign is complete and what to do.
    expect(page.locator("#all-done")).to_be_visible()
    expect(page.locator("#all-done")).to_contain_text("Every synset has reached its target")
    rows = page.locator("#datasets-table tbody tr")
    expect(rows).to_have_text(["No version of this campaign yet."])

    page.locator("#dataset-panel summary").click()
    form = page.locator("#dataset-form")
    form.locator('input[name="name"]').fill("shapes-small")
    form.locator('input[value="webdataset"]').uncheck()
    form.locator('input[value="votes"]').uncheck()
    form.locator('input[name="train"]').fill("0.9")  # 0.9 + 0.1 + 0.1
    form.get_by_role("button", name="Export").click()
    expect(page.locator("#dataset-status")).to_have_text(
        "The split fractions must add up to 1; they add up to 1.1.", timeout=15_000
    )
    assert DatasetVersion.objects.count() == 0

    form.locator('input[name="train"]').fill("0.8")
    form.get_by_role("button", name="Export").click()
    done = page.locator('#datasets-table tbody tr[data-status="done"]')
    expect(done).to_have_count(1, timeout=30_000)
    expect(done.locator("td").nth(3)).to_have_text("8")  # images
    expect(page.locator("#dataset-status")).to_have_text(
        re.compile(r"^shapes-small v1 is ready: 8 images, \d+ labels, \d+ boxes; download it below\.$")
    )

    version = DatasetVersion.objects.get()
    assert version.options["formats"] == ["imagenet", "coco"]
    link = done.get_by_role("link", name=re.compile(r"^tar, "))
    response = page.request.get(link.get_attribute("href"))  # absolute, as the API gives it
    assert response.status == 200 and response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.body())) as tar:
        names = tar.getnames()
    prefix = f"dataset-{version.id}/"
    folders = {n.removeprefix(prefix).split("/")[0] for n in names}
    assert f"{prefix}imagenet/LOC_synset_mapping.txt" in names
    assert "coco" in folders and "webdataset" not in folders and "votes" not in folders
