import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dog_taxonomy():
    # Live-server tests run in committed transactions that are flushed afterwards, so they seed their own data.
    call_command("import_wordnet", "--root", "dog.n.01", "--no-progress", stdout=StringIO(), stderr=StringIO())


def test_researcher_searches_and_walks_the_hierarchy(live_server, page, dog_taxonomy):
    page.goto(f"{live_server.url}/taxonomy/")
    page.get_by_label("Search synsets").fill("whippet")
    page.keyboard.press("Enter")

    expect(page.locator("#result-count")).to_have_text(re.compile(r"^1 synset matches"))
    page.get_by_role("link", name=re.compile("n02091134 whippet")).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("whippet")
    expect(page.locator(".gloss.lead")).to_contain_text("slender dog of greyhound type")
    expect(page.locator(".terms .chip")).to_have_text(["whippet", "whippet greyhound", "whippet dog"])
    page.locator(".path").first.get_by_role("link", name="dog", exact=True).click()

    expect(page).to_have_url(f"{live_server.url}/taxonomy/n02084071/")
    expect(page.locator(".children li")).to_have_count(18)
