import os
import re
import shutil
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from playwright.sync_api import expect, sync_playwright

from annotation.models import Candidate
from annotation.services.campaigns import campaign_create, campaign_set_state
from workers.roles import Role
from workers.services import account_create

CHROMIUM = "/usr/bin/chromium"
QUIET_SECONDS = 0.5


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (Playwright cannot download its own browser here).

    Playwright's sync API keeps an event loop on this thread, which makes Django refuse ORM calls from the
    test body; nothing here is really asynchronous, so that check is switched off for browser tests."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def requests_finish_before_flush(transactional_db, browser):
    """After each browser test, close its pages and wait for the live server's requests to finish.

    Without this, a request the page sent just before the test ended (the next HIT after a submit, a
    poll) could still be using the database while the test database is flushed: on in-memory SQLite,
    whose one connection the live server's threads share, the flush then failed with "database table
    is locked". This fixture depends on ``transactional_db``, so it is torn down before the flush."""
    active = [0]
    last_start = [time.monotonic()]
    lock = threading.Lock()

    def started(**kwargs):
        with lock:
            active[0] += 1
            last_start[0] = time.monotonic()

    def finished(**kwargs):
        with lock:
            active[0] -= 1

    request_started.connect(started, weak=False, dispatch_uid="browser-test-started")
    request_finished.connect(finished, weak=False, dispatch_uid="browser-test-finished")
    yield
    for context in browser.contexts:
        context.close()
    # Closing a page sends its goodbye (the labelling and box pages give their work back on pagehide, keepalive):
    # that request may reach the server a moment after the close, when none is active yet. So wait until none has
    # been active for QUIET_SECONDS since the close, not only until none is (CI, SQLite: a box page's late
    # release/ met the flush, "database table is locked").
    closed = time.monotonic()
    deadline = closed + 15
    while time.monotonic() < deadline and (
        active[0] > 0 or time.monotonic() - max(last_start[0], closed) < QUIET_SECONDS
    ):
        time.sleep(0.02)
    request_started.disconnect(dispatch_uid="browser-test-started")
    request_finished.disconnect(dispatch_uid="browser-test-finished")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def drawn_demo_images(tmp_path_factory) -> Path:
    """Where the demo images the tests have drawn are kept for the session, one folder per ``per_synset``: the
    drawing is deterministic and make_demo_images reuses a folder drawn with the same options."""
    return tmp_path_factory.mktemp("drawn-demo-images")


@pytest.fixture
def demo_images(settings, tmp_path, drawn_demo_images):
    """``demo_images(per_synset)`` imports that many demo shape images per shape as candidates, into a media
    folder under ``tmp_path``, and returns the researcher account that owns the test's campaign (password
    ``RESEARCHER_PASSWORD``). The images are drawn once per session and ``per_synset``."""

    def draw(per_synset: int):
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.DATA_DIR = tmp_path
        kept = drawn_demo_images / str(per_synset)
        if kept.exists():
            shutil.copytree(kept, tmp_path / "demo")
        call_command(
            "make_demo_images", "--per-synset", str(per_synset), "--no-progress", stdout=StringIO(), stderr=StringIO()
        )
        if not kept.exists():
            shutil.copytree(tmp_path / "demo", kept)
        return account_create(username="researcher", password=RESEARCHER_PASSWORD, role=Role.RESEARCHER)

    return draw


RESEARCHER_PASSWORD = "pw-researcher-1"
WORKER_PASSWORD = "a-long-pass-phrase-9"


def signed_in(page, url: str, username: str, password: str) -> None:
    """Sign ``username`` in through the sign-in form, as a person would."""
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile("/accounts/login/"))


def settled(page) -> None:
    """Wait until the work page's request for the next task has been answered. On SQLite (shared cache, table
    locks) a test's own reads and writes met "database table is locked" while the server wrote that lease."""
    expect(page.locator("#status")).not_to_have_text(re.compile(r"^(Loading|Saving)"))


def worker_signed_in(page, url: str, username: str):
    """A new worker account, signed in through the sign-in form on this page."""
    user = account_create(username=username, password=WORKER_PASSWORD, role=Role.WORKER)
    signed_in(page, url, username, WORKER_PASSWORD)
    return user


BOX_SYNSET = "n13873502"  # circle.n.01


def circles_campaign(demo_images, accepted: int):
    """A running box campaign over circles whose first ``accepted`` candidates are accepted (box work)."""
    researcher = demo_images(4)
    campaign = campaign_create(
        owner=researcher, name="Circles", wnids=[BOX_SYNSET], boxes_enabled=True, gold_rate=0.0, images_per_hit=6
    )
    circles = Candidate.objects.filter(synset_id=int(BOX_SYNSET[1:])).order_by("id")
    ids = list(circles.values_list("id", flat=True)[:accepted])
    Candidate.objects.filter(id__in=ids).update(state=Candidate.State.ACCEPTED)
    return campaign_set_state(campaign=campaign, state="running")


@pytest.fixture
def four_images(demo_images):
    """A running box campaign with four accepted circles: one draw task of four images."""
    return circles_campaign(demo_images, 4)


@pytest.fixture
def one_image(demo_images):
    return circles_campaign(demo_images, 1)
