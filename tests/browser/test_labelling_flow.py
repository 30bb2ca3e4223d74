"""A new worker signs up, passes the quiz, labels two HITs with the keyboard and sees their stats change; a
worker on a phone-sized screen taps through a HIT. In Debian's Chromium against the live server."""

import itertools
import re

import pytest
from playwright.sync_api import expect

from annotation.models import Candidate, GoldItem, Hit, QuizAttempt, Vote
from annotation.services.campaigns import campaign_create, campaign_set_state, gold_item_create
from tests.browser.conftest import WORKER_PASSWORD, settled, worker_signed_in
from workers.models import Qualification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CIRCLE, TRIANGLE = "n13873502", "n13879320"


def ready(page) -> None:
    """Wait until the HIT on screen takes keys: its images shown and label.js's SETTLE_MS passed (Submit enabled)."""
    expect(page.locator("#submit")).to_be_enabled()


def zoom_hint_contrast(page) -> float:
    """WCAG contrast ratio of the larger view's "Press Z or Esc to close" against the overlay over the page."""
    colours = page.evaluate(
        """() => {
            const rgba = (c) => c.match(/[\\d.]+/g).map(Number);
            return {
                text: rgba(getComputedStyle(document.querySelector("#zoom p")).color),
                overlay: rgba(getComputedStyle(document.querySelector("#zoom")).backgroundColor),
                page: rgba(getComputedStyle(document.body).backgroundColor),
            };
        }"""
    )
    alpha = colours["overlay"][3] if len(colours["overlay"]) > 3 else 1.0
    background = [alpha * o + (1 - alpha) * p for o, p in zip(colours["overlay"][:3], colours["page"][:3], strict=True)]

    def luminance(rgb) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted([luminance(colours["text"][:3]), luminance(background)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.fixture
def circle_campaign(demo_images):
    researcher = demo_images(16)
    campaign = campaign_create(
        owner=researcher, name="Circles", wnids=[CIRCLE], images_per_hit=6, gold_rate=0.0, quiz_size=4, min_votes=1
    )
    for i, candidate in enumerate(Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id")[:4]):
        gold_item_create(candidate=candidate, present=i % 2 == 0)
    return campaign_set_state(campaign=campaign, state="running")


def test_worker_signs_up_passes_quiz_labels_two_hits_by_keyboard(live_server, page, circle_campaign):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(WORKER_PASSWORD)
    page.get_by_label("Password confirmation").fill(WORKER_PASSWORD)
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, alice")
    page.get_by_role("link", name="Take the quiz").click()
    expect(page.locator("#quiz-grid .tile")).to_have_count(4)
    # Each tile's question sits below its image, not over it.
    first_tile = page.locator("#quiz-grid .tile").first
    expect(first_tile.locator(".caption")).to_have_text("circle?")
    expect(first_tile.locator("img")).to_have_js_property("complete", True)
    image_box, caption_box = first_tile.locator("img").bounding_box(), first_tile.locator(".caption").bounding_box()
    assert image_box["y"] + image_box["height"] <= caption_box["y"] + 0.5, (image_box, caption_box)
    attempt = QuizAttempt.objects.get(worker__username="alice")
    truth = dict(GoldItem.objects.values_list("id", "present"))
    for index, gold_id in enumerate(attempt.items):
        if truth[gold_id]:
            page.locator("#quiz-grid .tile").nth(index).click()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/work/{circle_campaign.id}/$"), timeout=20_000)  # slow under load
    expect(page.locator("#synset-name")).to_have_text("circle")
    expect(page.locator("#grid .tile")).to_have_count(6)
    expect(page.locator("#submit")).to_be_enabled()  # disabled in the page until a HIT is shown
    page.keyboard.press("1")  # first image: present
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")  # third image: present
    expect(page.locator("#grid .tile.marked")).to_have_count(2)
    # A reload gives the same HIT back with her marks
    page.reload()
    expect(page.locator("#grid .tile.marked")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("6 images · lease ends")
    expect(page.locator("#status")).to_contain_text("your marks were kept")
    ready(page)
    # Enter while the larger view is open only closes it; its hint is readable on the dark overlay
    page.keyboard.press("z")
    expect(page.locator("#zoom")).to_be_visible()
    expect(page.locator("#zoom .keys-hint")).to_have_text("Press Z or Esc to close")
    expect(page.locator("#zoom .touch-hint")).to_be_hidden()
    assert zoom_hint_contrast(page) >= 4.5
    page.keyboard.press("Enter")
    expect(page.locator("#zoom")).to_be_hidden()
    assert not Hit.objects.filter(worker__username="alice", status="submitted").exists()
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1", timeout=20_000)
    expect(page.locator("#done-unit")).to_have_text("HIT")
    expect(page.locator("#grid .tile.marked")).to_have_count(0)
    ready(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("2", timeout=20_000)
    expect(page.locator("#done-unit")).to_have_text("HITs")
    # She has now seen all twelve images: no HIT, nothing to submit
    expect(page.locator("#status")).to_contain_text("No more images for you")
    expect(page.locator("#submit")).to_be_disabled()
    expect(page.get_by_role("heading", level=1)).to_have_text("No more images for you in this campaign")
    expect(page.get_by_role("link", name="Back to your campaigns")).to_have_attribute("href", "/work/")

    page.goto(f"{live_server.url}/work/")
    expect(page.locator('[data-stat="hits_done"]')).to_have_text("2")
    expect(page.locator('[data-stat="answers"]')).to_have_text("12")
    first, second = Hit.objects.filter(worker__username="alice", status="submitted").order_by("id")
    assert Vote.objects.filter(hit=first, answer=1).count() == 2
    assert Vote.objects.filter(hit=second, answer=1).count() == 1
    assert Vote.objects.filter(hit__in=[first, second]).count() == 12


def test_a_hit_whose_lease_ran_out_is_reported_with_the_next_one(live_server, page, circle_campaign):
    from datetime import timedelta

    from django.utils import timezone

    worker = worker_signed_in(page, live_server.url, "erin")
    Qualification.objects.create(worker=worker, campaign=circle_campaign, status=Qualification.Status.QUALIFIED)
    page.goto(f"{live_server.url}/work/{circle_campaign.id}/")
    expect(page.locator("#grid .tile")).to_have_count(6)
    ready(page)
    page.keyboard.press("1")
    Hit.objects.filter(worker=worker).update(expires_at=timezone.now() - timedelta(seconds=1))

    page.keyboard.press("Enter")

    # The answers were refused (410): the page says so ahead of the next HIT instead of moving on silently
    expect(page.locator("#status")).to_contain_text(
        "The lease on your last HIT ran out before you sent it, so its answers were not recorded.", timeout=20_000
    )
    expect(page.locator("#done-count")).to_have_text("0")
    assert not Vote.objects.filter(worker=worker).exists()


def test_a_failed_quiz_answered_twice_in_a_hurry_is_scored_once(live_server, page, circle_campaign):
    worker_signed_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/work/{circle_campaign.id}/quiz/")
    expect(page.locator("#quiz-grid .tile")).to_have_count(4)
    expect(page.locator("#quiz-submit")).to_be_enabled()  # disabled in the page until the quiz is shown

    # Nothing marked: the two "present" gold items are answered wrong (2 of 4, under the 75% pass mark); Enter
    # twice before the first answer is back
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")

    expect(page.locator("#quiz-status")).to_have_text(
        re.compile(r"^Score 50%: not enough this time\. You can try again in 10 minutes\.$")
    )
    expect(page.locator("#quiz-submit")).to_be_disabled()
    expect(page.locator("#quiz-retry")).to_be_disabled()
    assert list(QuizAttempt.objects.filter(worker__username="bob").values_list("score", "passed")) == [(0.5, False)]


def test_a_failed_quiz_says_when_it_can_be_retried_and_offers_it_then(live_server, page, circle_campaign):
    # QA: "You can try again later" said nothing of when; a reload showed only the server's refusal.
    Campaign = type(circle_campaign)
    Campaign.objects.filter(id=circle_campaign.id).update(quiz_retry_seconds=3)
    worker_signed_in(page, live_server.url, "dora")
    page.goto(f"{live_server.url}/work/{circle_campaign.id}/quiz/")
    expect(page.locator("#quiz-submit")).to_be_enabled()
    page.keyboard.press("Enter")  # nothing marked: 50%
    expect(page.locator("#quiz-status")).to_contain_text("You can try again in")
    expect(page.locator("#quiz-retry")).to_be_disabled()
    page.reload()  # the server refuses a new quiz for now: the page says how long, and offers it then
    expect(page.locator("#quiz-status")).to_contain_text(re.compile(r"try (the quiz )?again in \d seconds?"))
    expect(page.locator("#quiz-retry")).to_be_enabled(timeout=10_000)
    page.locator("#quiz-retry").click()
    expect(page.locator("#quiz-grid .tile")).to_have_count(4)
    expect(page.locator("#quiz-submit")).to_be_enabled()
    assert QuizAttempt.objects.filter(worker__username="dora").count() == 2


def test_on_a_phone_the_grid_fits_the_screen_and_a_tap_marks_and_submits(live_server, browser, circle_campaign):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        worker = worker_signed_in(page, live_server.url, "carol")
        Qualification.objects.create(worker=worker, campaign=circle_campaign, status=Qualification.Status.QUALIFIED)
        page.goto(f"{live_server.url}/work/{circle_campaign.id}/")
        expect(page.locator("#grid .tile")).to_have_count(6)

        # Nothing wider than the screen, and the submit button is on screen without scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        expect(page.locator("#submit")).to_be_in_viewport()
        page.locator("#grid .tile").nth(1).tap()
        expect(page.locator("#grid .tile.marked")).to_have_count(1)
        # A long press opens the larger view; its hint speaks of taps here, not of keys the phone does not have.
        page.locator("#grid .tile").nth(2).dispatch_event("contextmenu")
        expect(page.locator("#zoom .touch-hint")).to_be_visible()
        expect(page.locator("#zoom .keys-hint")).to_be_hidden()
        page.locator("#zoom").tap()
        expect(page.locator("#zoom")).to_be_hidden()
        page.locator("#submit").tap()
        expect(page.locator("#done-count")).to_have_text("1", timeout=20_000)
        settled(page)
        hit = Hit.objects.get(worker=worker, status="submitted")
        assert Vote.objects.filter(hit=hit).count() == 6 and Vote.objects.filter(hit=hit, answer=1).count() == 1
    finally:
        context.close()


def test_with_a_quiz_per_synset_the_page_takes_the_worker_to_the_next_synsets_quiz(live_server, page, demo_images):
    researcher = demo_images(8)
    campaign = campaign_create(owner=researcher, name="Two shapes", wnids=[CIRCLE, TRIANGLE], images_per_hit=6,
                               gold_rate=0.0, quiz_size=2, min_votes=1, quiz_per_synset=True)  # fmt: skip
    for wnid in (CIRCLE, TRIANGLE):
        for i, candidate in enumerate(Candidate.objects.filter(synset_id=int(wnid[1:])).order_by("id")[:2]):
            gold_item_create(candidate=candidate, present=i == 0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    worker_signed_in(page, live_server.url, "dana")

    def pass_quiz() -> str:
        expect(page.locator("#quiz-grid .tile")).to_have_count(2)
        attempt = QuizAttempt.objects.filter(worker__username="dana").latest("id")
        name = attempt.synset.words.split(",")[0]
        expect(page.locator("h1")).to_have_text(f"Qualification quiz: {name}")  # the synset it opens
        expect(page.locator("#quiz-scope")).to_contain_text(f"images of “{name}” in Two shapes")
        truth = dict(GoldItem.objects.values_list("id", "present"))
        for index, gold_id in enumerate(attempt.items):
            if truth[gold_id]:
                page.locator("#quiz-grid .tile").nth(index).click()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"/work/{campaign.id}/$"), timeout=20_000)
        return attempt.synset.words

    page.goto(f"{live_server.url}/work/{campaign.id}/")  # not qualified yet: sent to the quiz
    first = pass_quiz()
    # Label the first synset's six remaining images, then the page finds none left and opens the next quiz
    expect(page.locator("#synset-name")).to_have_text(first.split(",")[0])
    ready(page)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/work/{campaign.id}/quiz/$"), timeout=20_000)
    second = pass_quiz()
    assert second != first
    expect(page.locator("#synset-name")).to_have_text(second.split(",")[0])


def test_a_hit_about_another_synset_than_the_last_marks_the_new_question(live_server, page, demo_images):
    # Consecutive HITs often ask about different synsets: the new name is marked, a repeated one is not.
    researcher = demo_images(12)
    campaign = campaign_create(owner=researcher, name="Shapes", wnids=[CIRCLE, TRIANGLE], images_per_hit=2,
                               gold_rate=0.0, min_votes=1)  # fmt: skip
    gold_item_create(candidate=Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id").first(), present=True)
    campaign = campaign_set_state(campaign=campaign, state="running")
    worker = worker_signed_in(page, live_server.url, "erin")
    Qualification.objects.create(worker=worker, campaign=campaign, status=Qualification.Status.QUALIFIED)
    page.goto(f"{live_server.url}/work/{campaign.id}/")
    heading, names, marked = page.locator("header.task h1"), [], []
    for _ in range(4):
        ready(page)
        names.append(page.locator("#synset-name").text_content())
        marked.append("new-synset" in (heading.get_attribute("class") or ""))
        page.keyboard.press("Enter")
        expect(page.locator("#done-count")).to_have_text(str(len(names)), timeout=20_000)
    assert marked[0] is False  # the first question of the page is not "new"
    assert marked[1:] == [now != before for before, now in itertools.pairwise(names)], (names, marked)


def test_a_blocked_worker_reads_why_on_the_labelling_page_and_at_home(live_server, page, circle_campaign):
    from annotation.services.refit import worker_block

    worker = worker_signed_in(page, live_server.url, "bob")
    Qualification.objects.create(worker=worker, campaign=circle_campaign, status=Qualification.Status.QUALIFIED)
    worker_block(worker_id=worker.id, campaign=circle_campaign, reason="Answers faster than a person can look.")
    page.goto(f"{live_server.url}/work/{circle_campaign.id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("No work for you in this campaign")
    expect(page.locator("#synset-gloss")).to_contain_text("The reason recorded: Answers faster than a person can look")
    expect(page.locator("#submit")).to_be_disabled()
    expect(page.locator("#status")).to_have_text("No work for you in this campaign.")  # not "Loading the next HIT…"
    page.get_by_role("link", name="Back to your campaigns").click()
    expect(page.locator(".campaigns li")).to_contain_text("blocked")
    expect(page.locator(".campaigns li")).to_contain_text("A researcher of the campaign can unblock you.")


def test_with_the_last_images_leased_to_someone_else_the_page_waits_and_then_labels_them(
    live_server, page, circle_campaign, settings
):
    import time
    from datetime import timedelta

    from django.db import OperationalError
    from django.utils import timezone

    from annotation.services.hits import hit_next
    from workers.roles import Role
    from workers.services import account_create

    settings.NEXT_HIT_RETRY_SECONDS = 1
    held = []
    for name in ("carol", "erin"):  # twelve candidates, one vote each needed: six leased to each
        other = account_create(username=name, password=WORKER_PASSWORD, role=Role.WORKER)
        Qualification.objects.create(worker=other, campaign=circle_campaign, status=Qualification.Status.QUALIFIED)
        held.append(hit_next(worker=other, campaign=circle_campaign))
    assert [hit.items.count() for hit in held] == [6, 6]
    worker = worker_signed_in(page, live_server.url, "dave")
    Qualification.objects.create(worker=worker, campaign=circle_campaign, status=Qualification.Status.QUALIFIED)

    page.goto(f"{live_server.url}/work/{circle_campaign.id}/")
    # Not "no more images": they are with carol and erin, whose leases may lapse.
    expect(page.locator("#status")).to_contain_text("No images for you right now", timeout=20_000)
    expect(page.locator("h1")).not_to_contain_text("No more images")

    # Carol walked away: her lease lapses, and the page's next look finds her images back in the queue (the
    # server expires lapsed leases itself when it finds nothing). One quick write, tried again if it meets the
    # page's own request on SQLite's table locks.
    for attempt in range(5):
        try:
            Hit.objects.filter(id=held[0].id).update(expires_at=timezone.now() - timedelta(seconds=1))
            break
        except OperationalError:
            time.sleep(0.2 * (attempt + 1))
    expect(page.locator("#grid .tile")).to_have_count(6, timeout=20_000)
    expect(page.locator("#synset-name")).to_have_text("circle")
