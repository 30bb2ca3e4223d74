"""The draw page under a worker's hands in Debian's Chromium: held keys answer one image, work survives a reload,
a box can be drawn with the keyboard, the status line says what happened to the box, an expired lease is
explained, and the page fits a phone."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import BoxJob, BoxTask, Candidate
from tests.annotation.hits.conftest import qualify
from tests.browser.conftest import settled, worker_signed_in
from tests.browser.test_box_verify_browser import drawn_by_others
from tests.browser.test_boxes_browser import answerable

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def sent_answers(page, action) -> list[dict]:
    """Run ``action`` and return the answers of the box task submit it causes."""
    with page.expect_request(re.compile(r"/api/v1/box-tasks/\d+/submit/$")) as request:
        action()
    return request.value.post_data_json["answers"]


def test_a_held_or_repeated_answer_key_answers_one_image_only(live_server, page, four_images):
    errors = collect_errors(page)
    held: list = []
    hold = [False]

    def images(route):
        if hold[0]:
            held.append(route)
        else:
            route.continue_()

    page.route("**/media/**", images)
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, four_images)
    page.goto(f"{live_server.url}/work/{four_images.id}/boxes/draw/")
    expect(page.locator("#count")).to_have_text("4")
    answerable(page, "#drawer")

    # S pressed three times at once: image 1 is skipped; image 2 (still loading) takes no answer yet.
    hold[0] = True
    for _ in range(3):
        page.keyboard.press("s")
    expect(page.locator("#position")).to_have_text("2")
    expect(page.locator("#drawer")).to_have_attribute("data-answerable", "false")
    hold[0] = False
    for route in held:
        route.continue_()

    # X held down (the first keydown and three auto-repeats) marks image 2 only.
    answerable(page, "#drawer")
    page.keyboard.down("x")
    for _ in range(3):
        page.keyboard.down("x")
    page.keyboard.up("x")
    expect(page.locator("#position")).to_have_text("3")

    answerable(page, "#drawer")
    page.keyboard.press("n")
    expect(page.locator("#position")).to_have_text("4")
    answerable(page, "#drawer")
    answers = sent_answers(page, lambda: page.keyboard.press("x"))
    assert [a["answer"] for a in answers] == ["skip", "not_present", "no_more", "not_present"]
    expect(page.locator("#done-count")).to_have_text("1")
    expect(page.locator("#done-unit")).to_have_text("task")  # a task of four images, said as such (QA)
    settled(page)
    assert errors == []


def test_the_answers_given_survive_a_reload_until_the_task_is_sent(live_server, page, four_images):
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, four_images)
    page.goto(f"{live_server.url}/work/{four_images.id}/boxes/draw/")
    answerable(page, "#drawer")
    rect = page.locator("#canvas").bounding_box()
    page.mouse.move(rect["x"] + 20, rect["y"] + 20)
    page.mouse.down()
    page.mouse.move(rect["x"] + 120, rect["y"] + 90, steps=4)
    page.mouse.up()
    page.keyboard.press("Enter")
    expect(page.locator("#position")).to_have_text("2")
    answerable(page, "#drawer")
    page.keyboard.press("n")
    expect(page.locator("#position")).to_have_text("3")

    leased = BoxTask.objects.get(worker=alice, status=BoxTask.Status.OPEN)
    page.reload()  # its goodbye gives the task back, its next request takes it again with the whole lease
    expect(page.locator("#position")).to_have_text("3")
    expect(page.locator("#status")).to_contain_text("Your work on this task was kept.")
    deadline = time.monotonic() + 10  # its goodbye may land after the reloaded page took the task back: then the
    while BoxTask.objects.get(id=leased.id).expires_at < timezone.now() + timedelta(minutes=10):  # page asks again
        assert time.monotonic() < deadline, "the reloaded page did not get its whole lease back"
        time.sleep(0.1)
    answerable(page, "#drawer")
    page.keyboard.press("x")
    answerable(page, "#drawer")
    answers = sent_answers(page, lambda: page.keyboard.press("s"))
    assert [a["answer"] for a in answers] == ["box", "no_more", "not_present", "skip"]
    assert len(answers[0]["boxes"]) == 1
    expect(page.locator("#done-count")).to_have_text("1")
    settled(page)
    assert page.evaluate("Object.keys(sessionStorage).filter((k) => k.startsWith('synsight-box-task-'))") == []
    first = BoxTask.objects.filter(worker=alice, kind="draw").order_by("id").first()
    assert first.status == BoxTask.Status.SUBMITTED


def test_a_box_can_be_drawn_moved_and_resized_with_the_keyboard(live_server, page, one_image):
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, one_image)
    page.goto(f"{live_server.url}/work/{one_image.id}/boxes/draw/")
    answerable(page, "#drawer")
    url = page.url
    image = Candidate.objects.get(state=Candidate.State.ACCEPTED).image
    w, h = image.width, image.height

    page.keyboard.press("b")  # a third of the image, in its middle
    x1, y1, x2, y2 = round(w / 3), round(h / 3), round(2 * w / 3), round(2 * h / 3)
    expect(page.locator("#status")).to_contain_text(f"Your box: {x2 - x1} × {y2 - y1} px of {w} × {h}")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # 2 px a press
    page.keyboard.press("Alt+ArrowLeft")  # 20 px
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Shift+ArrowRight")  # wider by 2 px
    page.keyboard.press("Shift+Alt+ArrowDown")  # taller by 20 px
    expect(page.locator("#status")).to_contain_text(f"Your box: {x2 - x1 + 2} × {y2 - y1 + 20} px")
    answers = sent_answers(page, lambda: page.keyboard.press("Enter"))
    assert page.url == url  # Alt+Left did not go back a page
    assert answers[0]["answer"] == "box"
    assert answers[0]["boxes"] == [[x1 + 6 - 20, y1 - 2, x2 + 6 - 20 + 2, y2 - 2 + 20]]
    expect(page.locator("#done-count")).to_have_text("1")
    settled(page)


def test_the_status_line_says_what_happened_to_the_box(live_server, page, one_image):
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, one_image)
    page.goto(f"{live_server.url}/work/{one_image.id}/boxes/draw/")
    answerable(page, "#drawer")
    rect = page.locator("#canvas").bounding_box()
    status = page.locator("#status")

    page.mouse.move(rect["x"] + 50, rect["y"] + 50)
    page.mouse.down()
    page.mouse.move(rect["x"] + 51, rect["y"] + 51)
    page.mouse.up()
    expect(status).to_have_text("Too small — drag across the object to draw a box.")

    page.mouse.move(rect["x"] + 20, rect["y"] + 20)
    page.mouse.down()
    page.mouse.move(rect["x"] + 140, rect["y"] + 100, steps=4)
    page.mouse.up()
    expect(status).to_contain_text(re.compile(r"^Your box: \d+ × \d+ px of \d+ × \d+ — press Enter to confirm\.$"))
    page.keyboard.press("Delete")
    expect(status).to_have_text("Box removed — drag on the image (or press B) to draw one.")
    page.keyboard.press("Enter")
    expect(status).to_have_text("Draw a box first (drag on the image, or press B).")
    assert BoxTask.objects.get(worker=alice).status == BoxTask.Status.OPEN


def test_an_expired_lease_is_explained_on_the_draw_page(live_server, page, one_image):
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, one_image)
    page.goto(f"{live_server.url}/work/{one_image.id}/boxes/draw/")
    answerable(page, "#drawer")
    BoxTask.objects.filter(worker=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.keyboard.press("x")
    expect(page.locator("#status")).to_contain_text(
        "The time for your last task ran out before you sent it, so its answers were not recorded."
    )
    settled(page)
    assert BoxJob.objects.get().absent_count == 0  # the "not present" was not counted


def test_the_box_pages_fit_a_phone_screen(live_server, browser, four_images):
    # Of the four images, one awaits coverage, one quality, and two a box.
    drawn_by_others(four_images, boxed=2, verifiers=("dave", "erin", "fred"), accepted=1)
    assert sorted(BoxJob.objects.values_list("state", flat=True)) == ["coverage", "draw", "draw", "quality"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    gail = worker_signed_in(page, live_server.url, "gail")
    qualify(gail, four_images)
    page_width = "document.documentElement.scrollWidth"

    for kind in ("quality", "coverage"):
        page.goto(f"{live_server.url}/work/{four_images.id}/boxes/{kind}/")
        expect(page.locator("#grid .tile")).to_have_count(1)
        answerable(page, "#verifier")
        assert page.evaluate(page_width) <= 390, kind
        expect(page.locator("#submit")).to_be_in_viewport()

    page.goto(f"{live_server.url}/work/{four_images.id}/boxes/draw/")
    expect(page.locator("#count")).to_have_text("2")
    answerable(page, "#drawer")
    assert page.evaluate(page_width) <= 390
    canvas = page.locator("#canvas").bounding_box()
    assert canvas["x"] >= 0 and canvas["x"] + canvas["width"] <= 390
    for button in ("#confirm", "#delete", "#no-more", "#absent", "#skip", "#status"):
        box = page.locator(button).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, button
    context.close()


def test_leaving_the_draw_page_gives_its_task_back_within_a_minute(live_server, page, four_images):
    alice = worker_signed_in(page, live_server.url, "alice")
    qualify(alice, four_images)
    page.goto(f"{live_server.url}/work/{four_images.id}/boxes/draw/")
    answerable(page, "#drawer")
    task = BoxTask.objects.get(worker=alice, status=BoxTask.Status.OPEN)
    assert task.expires_at > timezone.now() + timedelta(minutes=10)

    page.goto(f"{live_server.url}/work/")

    deadline = timezone.now() + timedelta(seconds=10)
    while BoxTask.objects.get(id=task.id).expires_at > timezone.now() + timedelta(seconds=60):
        assert timezone.now() < deadline, "the page's goodbye did not arrive"
        time.sleep(0.1)
    assert BoxTask.objects.get(id=task.id).status == BoxTask.Status.OPEN  # the images go back a minute later
