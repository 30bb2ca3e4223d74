"""The box check pages (quality, coverage) under a worker's hands in Debian's Chromium: a held key answers once,
the quality grid enlarges an image with its box, an expired lease is explained, and the grids fit a phone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import Box, BoxJob, BoxTask
from annotation.services.boxes import box_task_next, box_task_submit
from tests.annotation.hits.conftest import qualify
from tests.browser.conftest import WORKER_PASSWORD, settled, worker_signed_in
from tests.browser.test_boxes_browser import answerable
from workers.roles import Role
from workers.services import account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def drawn_by_others(campaign, *, boxed: int = 4, verifiers: tuple[str, ...] = (), accepted: int = 0) -> None:
    """Another worker (through the services) draws a box on the first ``boxed`` images of their draw task and
    skips the others; each of ``verifiers`` then says yes to the boxes of the first ``accepted`` of those
    images and "can't tell" to the rest (three yeses send an image to coverage)."""
    drawer = account_create(username="drawer", password=WORKER_PASSWORD, role=Role.WORKER)
    qualify(drawer, campaign)
    task = box_task_next(worker=drawer, campaign=campaign, kind="draw")
    answers = []
    for n, item in enumerate(task.items.select_related("job__candidate__image").order_by("position")):
        image = item.job.candidate.image
        box = [image.width // 4, image.height // 4, image.width * 3 // 4, image.height * 3 // 4]
        drawn = {"answer": "box", "boxes": [box]} if n < boxed else {"answer": "skip"}
        answers.append({"item": item.id, "ms": 5000, **drawn})
    box_task_submit(worker=drawer, task_id=task.id, answers=answers, idempotency_key="drawn-by-others")
    to_accept = set(Box.objects.order_by("id").values_list("id", flat=True)[:accepted])
    for name in verifiers:
        verifier = account_create(username=name, password=WORKER_PASSWORD, role=Role.WORKER)
        qualify(verifier, campaign)
        task = box_task_next(worker=verifier, campaign=campaign, kind="quality")
        answers = [
            {"item": i.id, "answer": "yes" if i.box_id in to_accept else "cant_tell", "ms": 900}
            for i in task.items.all()
        ]
        box_task_submit(worker=verifier, task_id=task.id, answers=answers, idempotency_key=f"verified-by-{name}")


def test_an_expired_lease_is_explained_on_the_quality_page(live_server, page, one_image):
    drawn_by_others(one_image, boxed=1)
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, one_image)
    page.goto(f"{live_server.url}/work/{one_image.id}/boxes/quality/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    answerable(page, "#verifier")
    BoxTask.objects.filter(worker=alice, kind="quality").update(expires_at=timezone.now() - timedelta(seconds=1))
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("so its answers were not recorded.")
    expect(page.locator("#done-count")).to_have_text("0")
    settled(page)


def test_a_held_key_on_the_quality_grid_toggles_once_and_z_enlarges_the_box(live_server, page, one_image):
    drawn_by_others(one_image, boxed=1)
    bob = worker_signed_in(page, live_server.url, "bob")
    qualify(bob, one_image)
    page.goto(f"{live_server.url}/work/{one_image.id}/boxes/quality/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    answerable(page, "#verifier")

    page.keyboard.down("1")  # and three auto-repeats: four toggles would leave it unmarked
    for _ in range(3):
        page.keyboard.down("1")
    page.keyboard.up("1")
    expect(page.locator("#grid .tile.marked")).to_have_count(1)

    zoom = page.locator("#zoom")
    page.keyboard.press("z")
    expect(zoom).to_be_visible()
    expect(zoom.locator("img")).to_be_visible()
    expect(zoom.locator(".ov")).to_have_count(1)
    frame = zoom.locator(".frame").bounding_box()
    assert frame["width"] > 2 * page.locator("#grid .tile").bounding_box()["width"]
    page.keyboard.press("Enter")  # closes the larger view; sends nothing
    expect(zoom).to_be_hidden()
    expect(page.locator("#done-count")).to_have_text("0")
    page.locator("#grid .tile").click(button="right")
    expect(zoom).to_be_visible()
    page.keyboard.press("Escape")
    expect(zoom).to_be_hidden()
    expect(page.locator("#grid .tile.marked")).to_have_count(1)
    assert BoxTask.objects.get(worker=bob).status == BoxTask.Status.OPEN


def test_the_check_pages_fit_a_phone_screen(live_server, browser, four_images):
    # Of the four images, one awaits coverage and one quality.
    drawn_by_others(four_images, boxed=2, verifiers=("dave", "erin", "fred"), accepted=1)
    assert sorted(BoxJob.objects.values_list("state", flat=True)) == ["coverage", "draw", "draw", "quality"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    gail = worker_signed_in(page, live_server.url, "gail")
    qualify(gail, four_images)
    for kind in ("quality", "coverage"):
        page.goto(f"{live_server.url}/work/{four_images.id}/boxes/{kind}/")
        expect(page.locator("#grid .tile")).to_have_count(1)
        answerable(page, "#verifier")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, kind
        expect(page.locator("#submit")).to_be_in_viewport()
    context.close()
