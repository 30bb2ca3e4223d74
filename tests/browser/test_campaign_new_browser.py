"""The new-campaign page when the researcher already has a campaign of that name (case aside): the API refuses it
with a 409 and a sentence; the page shows the sentence, keeps what was typed and creates nothing. Debian's Chromium
against the live server."""

import pytest
from playwright.sync_api import expect

from annotation.models import Campaign
from tests.browser.conftest import RESEARCHER_PASSWORD, signed_in
from tests.browser.test_accessibility import axe_violations
from tests.wordnet_snapshot import plane_figures_import
from workers.roles import Role
from workers.services import account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CIRCLE, TRIANGLE = "n13873502", "n13879320"


@pytest.fixture
def researcher(live_server, page):
    # Live-server tests run in committed transactions that are flushed afterwards, so they seed their own data.
    plane_figures_import()
    user = account_create(username="researcher", password=RESEARCHER_PASSWORD, role=Role.RESEARCHER)
    signed_in(page, live_server.url, "researcher", RESEARCHER_PASSWORD)
    return user


def fill_in(page, url: str, *, wnid: str, name: str) -> None:
    page.goto(f"{url}/research/new/")
    page.wait_for_load_state()  # its script attached: a submit before that posted the form natively (a reload)
    page.locator("#wnids").fill(wnid)
    expect(page.locator("#check-summary")).to_have_text("1 synset · no overlaps")
    page.get_by_label("Name").fill(name)


def test_a_name_the_researcher_already_has_is_refused_on_the_page_keeping_the_form(live_server, page, researcher):
    fill_in(page, live_server.url, wnid=CIRCLE, name="Shapes")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Shapes")
    first = Campaign.objects.get()

    # The same name in another case, over another synset, with some policy typed in.
    fill_in(page, live_server.url, wnid=TRIANGLE, name="shapes")
    page.get_by_label("Images per HIT").fill("6")
    page.get_by_label("Collect bounding boxes").check()
    page.get_by_role("button", name="Create campaign").click()

    status = page.locator("#create-status")
    sentence = f'You already have a campaign named "Shapes" (campaign {first.id}); give this one another name.'
    expect(status).to_have_text(sentence)
    expect(status).to_have_attribute("aria-live", "polite")  # announced, as the page's other errors are
    assert page.url == f"{live_server.url}/research/new/"
    # What was typed is all still there.
    name = page.get_by_label("Name")
    expect(name).to_have_value("shapes")
    expect(page.locator("#wnids")).to_have_value(TRIANGLE)
    expect(page.get_by_label("Images per HIT")).to_have_value("6")
    expect(page.get_by_label("Collect bounding boxes")).to_be_checked()
    # Focus is on the name, marked invalid and described by the sentence (it fell to <body>: the disabled button).
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description(sentence)
    assert axe_violations(page) == []
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Shapes"]

    # Another name: no longer marked invalid, and the same form creates the campaign.
    name.fill("Triangles")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Triangles")
    second = Campaign.objects.get(name="Triangles")
    assert (second.owner, second.images_per_hit, second.boxes_enabled) == (researcher, 6, True)
    assert Campaign.objects.count() == 2
