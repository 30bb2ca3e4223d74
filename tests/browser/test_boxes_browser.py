"""Box work in Debian's Chromium against the live server: a worker draws a box with the mouse and it is
stored in image pixels exactly; another worker judges it on the quality grid; once the box is accepted, a
third worker follows the worker home page's link to the coverage grid and answers there."""

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Box, BoxAnswer, BoxJob, Candidate
from annotation.services.boxes import box_task_next, box_task_submit
from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.annotation.hits.conftest import qualify
from tests.browser.conftest import WORKER_PASSWORD, settled, worker_signed_in
from workers.roles import Role
from workers.services import account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CIRCLE = "n13873502"


def answerable(page, root: str) -> None:
    """Wait until the box page under ``root`` takes answer keys: its image has loaded (draw) and has been on
    screen for the page's short pause, which keeps a held or repeated key from answering the next image."""
    expect(page.locator(root)).to_have_attribute("data-answerable", "true")


@pytest.fixture
def box_campaign(demo_images):
    researcher = demo_images(4)
    campaign = campaign_create(
        owner=researcher, name="Circles", wnids=[CIRCLE], boxes_enabled=True, gold_rate=0.0, images_per_hit=6
    )
    first_two = Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id")[:2]
    Candidate.objects.filter(id__in=[c.id for c in first_two]).update(state=Candidate.State.ACCEPTED)
    return campaign_set_state(campaign=campaign, state="running")


def test_box_pages_without_work_say_so_without_a_question_or_buttons(live_server, page, box_campaign):
    Candidate.objects.update(state=Candidate.State.REJECTED)  # nothing accepted: no box work at all
    carol = worker_signed_in(page, live_server.url, "carol")
    qualify(carol, box_campaign)

    page.goto(f"{live_server.url}/work/{box_campaign.id}/boxes/draw/")
    expect(page.locator("#status")).to_contain_text("No images to box for you right now")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#stage")).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_have_text("No images to box for you right now")
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.get_by_role("link", name="Back to your campaigns")).to_have_attribute("href", "/work/")

    page.goto(f"{live_server.url}/work/{box_campaign.id}/boxes/coverage/")
    expect(page.locator("#status")).to_contain_text("Nothing to check for you right now")
    expect(page.locator("#submit")).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing to check for you right now")
    page.get_by_role("link", name="Back to your campaigns").click()
    expect(page).to_have_url(f"{live_server.url}/work/")


def test_a_box_drawn_with_the_mouse_is_stored_in_image_pixels_and_verified_on_the_grid(
    live_server, browser, box_campaign
):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, box_campaign)
    page.goto(f"{live_server.url}/work/{box_campaign.id}/boxes/draw/")
    expect(page.locator("#synset-name")).to_have_text("circle")
    expect(page.locator("#count")).to_have_text("2")
    canvas = page.locator("#canvas")
    expect(canvas).to_have_attribute("data-ready", re.compile(r"\d+"))
    rect = canvas.bounding_box()
    start = (rect["x"] + 37.0, rect["y"] + 29.0)
    end = (rect["x"] + 211.0, rect["y"] + 163.0)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(rect["x"] + 120, rect["y"] + 90, steps=4)
    page.mouse.move(*end, steps=4)
    page.mouse.up()
    expect(page.locator("#status")).to_contain_text("press Enter")
    page.keyboard.press("Enter")  # confirm the box on image 1
    expect(page.locator("#position")).to_have_text("2")
    # U goes back to image 1 with its box on it again (nothing was sent): confirmed again, it is the same box.
    expect(page.locator("#back")).to_be_enabled()
    page.keyboard.press("u")
    expect(page.locator("#position")).to_have_text("1")
    expect(page.locator("#status")).to_have_text("Back to image 1: its answer was taken back; answer it again.")
    expect(page.locator("#back")).to_be_disabled()
    page.keyboard.press("Enter")
    expect(page.locator("#position")).to_have_text("2")
    answerable(page, "#drawer")  # answer keys are taken once the image has loaded and been seen a moment
    page.keyboard.press("x")  # image 2: not present
    expect(page.locator("#done-count")).to_have_text("1")
    settled(page)  # before reading the database: on SQLite a lease being written locks its tables

    box = Box.objects.get()
    shown = box.candidate.image
    scale = rect["width"] / shown.width  # CSS px per image px
    assert rect["height"] / shown.height == pytest.approx(scale, rel=0.01)
    expected = [round((start[0] - rect["x"]) / scale), round((start[1] - rect["y"]) / scale),
                round((end[0] - rect["x"]) / scale), round((end[1] - rect["y"]) / scale)]  # fmt: skip
    assert [box.x1, box.y1, box.x2, box.y2] == expected
    assert (box.state, box.drawn_by_id) == ("verifying", alice.id)
    assert set(BoxJob.objects.values_list("state", flat=True)) == {"quality", "draw"}
    context.close()

    # Another worker judges the box on the quality grid: yes with the keyboard.
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    bob = worker_signed_in(page, live_server.url, "bob")
    qualify(bob, box_campaign)
    page.goto(f"{live_server.url}/work/{box_campaign.id}/boxes/quality/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    expect(page.locator("#grid .tile .ov")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("1 image · lease ends")
    answerable(page, "#verifier")
    page.keyboard.press("1")
    expect(page.locator("#grid .tile.marked")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1")
    expect(page.locator("#status")).to_contain_text("Nothing to check for you right now")
    expect(page.locator("#submit")).to_be_hidden()
    settled(page)  # before reading the database: on SQLite a lease being written locks its tables
    assert list(BoxAnswer.objects.filter(kind="quality").values_list("worker__username", "answer", "box_id")) == [
        ("bob", 1, box.id)
    ]
    context.close()

    # Two more verifiers (through the services) accept the box: its image moves on to coverage.
    for name in ("dave", "erin"):
        verifier = account_create(username=name, password=WORKER_PASSWORD, role=Role.WORKER)
        qualify(verifier, box_campaign)
        task = box_task_next(worker=verifier, campaign=box_campaign, kind="quality")
        answers = [{"item": i.id, "answer": "yes", "ms": 900} for i in task.items.all()]
        box_task_submit(worker=verifier, task_id=task.id, answers=answers, idempotency_key=f"accept-{name}")
    box.refresh_from_db()
    assert box.state == "accepted"
    assert BoxJob.objects.get(id=box.job_id).state == "coverage"

    # A third worker finds the box pages on the home page and answers "not every circle is boxed".
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    carol = worker_signed_in(page, live_server.url, "carol")
    qualify(carol, box_campaign)
    page.goto(f"{live_server.url}/work/")
    links = page.locator(f'[data-boxes="{box_campaign.id}"]')
    expect(links.get_by_role("link", name="Draw")).to_have_attribute("href", f"/work/{box_campaign.id}/boxes/draw/")
    expect(links.get_by_role("link", name="Check boxes")).to_be_visible()
    links.get_by_role("link", name="Check coverage").click()
    expect(page).to_have_url(re.compile(f"/work/{box_campaign.id}/boxes/coverage/$"))
    expect(page.locator("#grid .tile")).to_have_count(1)
    expect(page.locator("#grid .tile .ov")).to_have_count(1)  # the accepted box is shown
    answerable(page, "#verifier")
    page.keyboard.press("Enter")  # nothing marked: "no"
    expect(page.locator("#done-count")).to_have_text("1")
    settled(page)  # before reading the database: on SQLite a lease being written locks its tables
    assert list(BoxAnswer.objects.filter(kind="coverage").values_list("worker__username", "answer", "job_id")) == [
        ("carol", 0, box.job_id)
    ]
    context.close()


def test_with_no_box_work_yet_the_draw_page_looks_again_and_takes_the_first_accepted_images(
    live_server, page, demo_images, settings
):
    import time

    from django.core.cache import cache
    from django.db import OperationalError

    settings.NEXT_HIT_RETRY_SECONDS = 1
    researcher = demo_images(4)
    campaign = campaign_create(
        owner=researcher, name="Circles", wnids=[CIRCLE], boxes_enabled=True, gold_rate=0.0, images_per_hit=6
    )
    campaign = campaign_set_state(campaign=campaign, state="running")
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, campaign)
    page.goto(f"{live_server.url}/work/{campaign.id}/boxes/draw/")
    expect(page.locator("#status")).to_contain_text("No images to box for you right now", timeout=20_000)

    # Labelling accepts two images meanwhile (one quick write, tried again if it meets the page's request on
    # SQLite's table locks): the page's next look finds them.
    first_two = list(
        Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id").values_list("id", flat=True)[:2]
    )
    for attempt in range(5):
        try:
            Candidate.objects.filter(id__in=first_two).update(state=Candidate.State.ACCEPTED)
            break
        except OperationalError:
            time.sleep(0.2 * (attempt + 1))
    cache.delete(f"boxes-enter:{campaign.id}")  # accepted images enter the pipeline at most every 30 s
    expect(page.locator("#count")).to_have_text("2", timeout=20_000)
    expect(page.locator("#synset-name")).to_have_text("circle")
