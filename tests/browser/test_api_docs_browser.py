"""The API's documentation pages (Swagger UI and ReDoc) render from this server alone: every script, style, font
and image they fetch comes from the app (the sidecar package ships the viewers), none from a CDN or a font host —
nothing may be fetched from elsewhere at run time, and a machine without the internet shows the same page. ReDoc's
bundle still asks for its CDN logo: the page's Content-Security-Policy stops that in the browser, before any
network (config/api_docs.py)."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("path", "rendered"), [("/api/v1/docs/", ".swagger-ui .info"), ("/api/v1/redoc/", ".api-content")]
)
def test_the_api_docs_fetch_nothing_from_another_host(live_server, page, path, rendered):
    here = urlsplit(live_server.url).netloc
    elsewhere, failed = {}, []

    def asked(request):
        if urlsplit(request.url).scheme in {"http", "https"} and urlsplit(request.url).netloc != here:
            elsewhere[request.url] = None

    def refused(request):
        if request.url in elsewhere:
            elsewhere[request.url] = request.failure

    page.on("request", asked)
    page.on("requestfailed", refused)
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))

    page.goto(f"{live_server.url}{path}")
    expect(page.locator(rendered).first).to_be_visible(timeout=20_000)
    page.wait_for_load_state("networkidle")

    # Each off-site request the page made was blocked by the browser itself, never sent.
    assert all(failure in {"csp", "net::ERR_BLOCKED_BY_CSP"} for failure in elsewhere.values()), elsewhere
    assert failed == [], failed
