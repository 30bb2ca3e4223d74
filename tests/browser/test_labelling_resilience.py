"""The labelling page under slips and failures: a double or held Enter, a next HIT that fails or is slow, a lease
that runs out on screen, two tabs on one HIT, a session that ends mid-HIT, Enter on the top bar's links.

Time is Playwright's fake clock (page.clock) wherever the page waits (SETTLE_MS, retry pauses, the lease): the
tests move it on by hand, so no assertion depends on how fast the loaded machine runs the page. Requests are
delayed or failed with page.route."""

import json
import re
import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import Candidate, Hit, Vote
from annotation.services.campaigns import campaign_create, campaign_set_state, gold_item_create
from annotation.services.hits import hit_release
from tests.browser.conftest import WORKER_PASSWORD, worker_signed_in
from workers.models import Qualification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CIRCLE = "n13873502"
NEXT = re.compile(r"/api/v1/campaigns/\d+/hits/next/$")
SUBMIT = re.compile(r"/api/v1/hits/\d+/submit/$")
SETTLE_MS = 600  # label.js


@pytest.fixture
def campaign(demo_images):
    """Circles: twelve images to label, six per HIT (two HITs per worker), no gold in HITs."""
    researcher = demo_images(16)
    campaign = campaign_create(
        owner=researcher, name="Circles", wnids=[CIRCLE], images_per_hit=6, gold_rate=0.0, quiz_size=4, min_votes=1,
    )  # fmt: skip
    for i, candidate in enumerate(Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id")[:4]):
        gold_item_create(candidate=candidate, present=i % 2 == 0)
    return campaign_set_state(campaign=campaign, state="running")


@pytest.fixture
def worker(live_server, page, campaign):
    """A qualified worker, signed in on ``page``."""
    user = worker_signed_in(page, live_server.url, "erin")
    Qualification.objects.create(worker=user, campaign=campaign, status=Qualification.Status.QUALIFIED)
    return user


def requests_to(page, pattern) -> list:
    """The requests the page sends to URLs matching ``pattern``, from now on (a list that fills as they go)."""
    sent = []
    page.on("request", lambda request: sent.append(request) if pattern.search(request.url) else None)
    return sent


def open_labelling(page, live_server, campaign) -> None:
    """The labelling page with the fake clock installed and its first HIT shown and settled; the clock paused."""
    page.clock.install()
    page.goto(f"{live_server.url}/work/{campaign.id}/")
    expect(page.locator("#grid .tile")).to_have_count(6)
    expect(page.locator("#submit")).to_be_enabled()  # the clock still runs here: images shown, SETTLE_MS passed
    page.clock.pause_at(datetime.fromtimestamp(page.evaluate("Date.now()") / 1000 + 1))  # a number means seconds


def settle(page) -> None:
    """Move the paused clock past SETTLE_MS once the new grid's images are shown (its settle timer set)."""
    expect(page.locator("#grid[data-shown]")).to_have_count(1)
    page.clock.run_for(SETTLE_MS)


def shown_hit(page) -> int:
    return int(page.locator("#grid").get_attribute("data-hit"))


def test_enter_twice_or_held_sends_one_hit_and_the_next_waits_to_be_seen(live_server, page, campaign, worker):
    submits = requests_to(page, SUBMIT)
    open_labelling(page, live_server, campaign)
    first = shown_hit(page)

    # Enter, and again at once: the first sends the HIT on screen; the second lands on the next grid, which
    # takes no key until it has been shown SETTLE_MS (the clock is paused), and the HIT goes nowhere.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(page.locator("#grid")).not_to_have_attribute("data-hit", str(first))
    expect(page.locator("#grid .tile")).to_have_count(6)
    second = shown_hit(page)
    page.keyboard.press("Enter")
    page.keyboard.press("3")
    expect(page.locator("#submit")).to_be_disabled()
    expect(page.locator("#grid .tile.marked")).to_have_count(0)
    assert [request.url.split("/")[-3] for request in submits] == [str(first)]
    assert Hit.objects.get(id=second).status == Hit.Status.OPEN

    # Settled, a held Enter's repeats send nothing: only a new press does
    settle(page)
    expect(page.locator("#submit")).to_be_enabled()
    page.evaluate(
        """() => document.activeElement.dispatchEvent(
            new KeyboardEvent("keydown", {key: "Enter", repeat: true, bubbles: true, cancelable: true}))"""
    )
    page.evaluate(
        """() => document.activeElement.dispatchEvent(
            new KeyboardEvent("keydown", {key: "1", repeat: true, bubbles: true, cancelable: true}))"""
    )
    expect(page.locator("#labeller")).to_have_attribute("data-state", "shown")  # a submit would say "sending"
    expect(page.locator("#grid .tile.marked")).to_have_count(0)
    assert len(submits) == 1

    # Six seconds on the six images, the first marked at once: each answer takes a sixth of the time in view
    page.clock.run_for(6000 - SETTLE_MS)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("2")
    assert len(submits) == 2
    assert sorted(Vote.objects.filter(hit_id=second).values_list("response_ms", flat=True)) == [1000] * 6
    assert Vote.objects.filter(hit_id=second, answer=1).count() == 1
    assert Vote.objects.filter(hit_id=first).count() == 6  # sent by the first Enter, all "absent"


def test_keys_while_the_next_hit_loads_do_not_mark_the_grid_just_sent(live_server, page, campaign, worker):
    held = []

    def hold_second(route):
        if held:
            return route.continue_()
        held.append(route)  # the next HIT after the submit: answered when the test says

    open_labelling(page, live_server, campaign)
    page.route(NEXT, hold_second)
    first = shown_hit(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Loading the next HIT…")
    expect(page.locator("#grid")).to_have_class(re.compile(r"\bsent\b"))

    page.keyboard.press("2")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    expect(page.locator("#grid .tile.marked")).to_have_count(1)  # the mark it was sent with, nothing more
    held[0].continue_()
    expect(page.locator("#grid")).not_to_have_attribute("data-hit", str(first))
    expect(page.locator("#grid .tile.marked")).to_have_count(0)
    assert Vote.objects.filter(hit_id=first, answer=1).count() == 1


def test_a_next_hit_lost_on_the_network_is_retried_and_try_again_works(live_server, page, campaign, worker):
    failing = [False]
    nexts = requests_to(page, NEXT)
    open_labelling(page, live_server, campaign)
    page.route(NEXT, lambda route: route.abort() if failing[0] else route.continue_())
    first = shown_hit(page)
    failing[0] = True
    page.keyboard.press("Enter")

    # Said in plain words; the grid just sent and its question are gone, and so is Submit
    expect(page.locator("#status")).to_have_text(
        "Synsight could not be reached (no network, or the server is down). Trying again in 2 seconds…"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Could not load the next HIT")
    expect(page.locator("#grid .tile")).to_have_count(0)
    expect(page.locator("#submit")).to_be_hidden()
    expect(page.get_by_role("link", name="read more")).to_be_hidden()
    expect(page.locator("#done-count")).to_have_text("1")  # the HIT itself was saved
    assert len(nexts) == 2

    # It tries again by itself, waiting longer each time
    with page.expect_request(NEXT):
        page.clock.run_for(2000)
    expect(page.locator("#status")).to_contain_text("Trying again in 5 seconds…")

    # The network is back: "Try again" loads the next HIT at once
    failing[0] = False
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#grid .tile")).to_have_count(6)
    assert shown_hit(page) != first
    expect(page.locator("#synset-name")).to_have_text("circle")
    expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    assert len(nexts) == 4


def test_a_next_hit_refused_for_a_while_waits_as_told_then_backs_off(live_server, page, campaign, worker):
    answers = []  # what the next-HIT requests after the first submit get, in turn; then the server's own
    nexts = requests_to(page, NEXT)

    def refuse(route):
        if not answers:
            return route.continue_()
        status, headers, body = answers.pop(0)
        route.fulfill(status=status, headers=headers, content_type="application/json", body=json.dumps(body))

    open_labelling(page, live_server, campaign)
    page.route(NEXT, refuse)
    first = shown_hit(page)
    outage = {"detail": "The database is unavailable right now; try again in a moment.", "code": "database_unavailable"}
    answers.extend([(503, {"Retry-After": "7"}, outage), (500, {}, {"detail": "Server error.", "code": "error"})])
    page.keyboard.press("Enter")

    expect(page.locator("#status")).to_have_text(
        "The database is unavailable right now; try again in a moment. Trying again in 7 seconds…"
    )
    expect(page.locator("#grid .tile")).to_have_count(0)
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    page.clock.run_for(6900)
    assert len(nexts) == 2  # not before the server's Retry-After
    with page.expect_request(NEXT):
        page.clock.run_for(100)
    expect(page.locator("#status")).to_have_text("Server error. Trying again in 5 seconds…")
    with page.expect_request(NEXT):
        page.clock.run_for(5000)
    expect(page.locator("#grid .tile")).to_have_count(6)
    assert shown_hit(page) != first and len(nexts) == 4


def test_no_work_right_now_keeps_looking_as_long_as_the_server_says_some_may_come(live_server, page, campaign, worker):
    waits = [8]  # next-HIT answers "nothing now, ask again in 20 s" eight times in a row, then the real answer
    nexts = requests_to(page, NEXT)

    def none_yet(route):
        if waits[0] == 0:
            return route.continue_()
        waits[0] -= 1
        route.fulfill(status=204, headers={"Retry-After": "20"})

    open_labelling(page, live_server, campaign)
    page.route(NEXT, none_yet)
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text(
        "No images for you right now; this page checks again every 20 seconds."
    )
    # Nothing of a HIT is left on the page: no question, no "read more" going nowhere, no Submit
    expect(page.get_by_role("heading", level=1)).to_have_text("No images for you right now")
    expect(page.get_by_role("link", name="read more")).to_be_hidden()
    expect(page.locator("#submit")).to_be_hidden()
    expect(page.locator(".help")).to_be_hidden()
    for _ in range(8):
        # Each look is set up once the last answer is in (the page back to waiting): only then can the clock fire it
        expect(page.locator("#labeller")).to_have_attribute("data-state", "waiting")
        with page.expect_request(NEXT):
            page.clock.run_for(20_000)
    expect(page.locator("#grid .tile")).to_have_count(6)
    expect(page.get_by_role("heading", level=1)).to_have_text("Is there a circle in the image?")
    assert len(nexts) == 10


def test_a_lease_that_runs_out_on_screen_is_said_at_once_and_a_new_hit_is_offered(live_server, page, campaign, worker):
    submits = requests_to(page, SUBMIT)
    open_labelling(page, live_server, campaign)
    first = shown_hit(page)
    page.keyboard.press("1")
    expect(page.locator("#grid .tile.marked")).to_have_count(1)

    # Past the lease (900 s): the server has let it go, and the page says so without being asked
    Hit.objects.filter(id=first).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.clock.run_for(905_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("The lease on this HIT ran out")
    expect(page.locator("#status")).to_have_text(
        "The lease on this HIT ran out: its marks can no longer be sent. Press Enter for a new HIT."
    )
    expect(page.locator("#grid .tile")).to_have_count(0)
    page.keyboard.press("2")  # nothing to mark
    page.keyboard.press("Enter")
    expect(page.locator("#grid .tile")).to_have_count(6)
    assert shown_hit(page) != first
    assert submits == [] and not Vote.objects.exists()


def test_a_hit_already_sent_from_another_tab_moves_this_tab_on(live_server, page, campaign, worker):
    open_labelling(page, live_server, campaign)
    other = page.context.new_page()  # the same worker's second tab, on the same open HIT
    other.goto(f"{live_server.url}/work/{campaign.id}/")
    expect(other.locator("#grid .tile")).to_have_count(6)
    first = shown_hit(page)
    assert shown_hit(other) == first

    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1")
    expect(page.locator("#grid")).not_to_have_attribute("data-hit", str(first))
    second = shown_hit(page)
    settle(other)
    expect(other.locator("#submit")).to_be_enabled()
    other.keyboard.press("1")
    other.keyboard.press("Enter")

    expect(other.locator("#status")).to_contain_text(
        f"HIT {first} was already submitted. This page moved on to the next HIT."
    )
    expect(other.locator("#grid")).to_have_attribute("data-hit", str(second))
    expect(other.locator("#done-count")).to_have_text("0")
    assert Vote.objects.filter(hit_id=first, answer=1).count() == 0  # the first tab's answers stand


def test_enter_on_a_top_bar_link_follows_it_and_sends_nothing(live_server, page, campaign, worker):
    submits = requests_to(page, SUBMIT)
    open_labelling(page, live_server, campaign)
    first = shown_hit(page)
    page.locator(".topbar").get_by_role("link", name="Work", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/work/")
    assert submits == []
    assert Hit.objects.get(id=first).status == Hit.Status.OPEN


def test_signed_out_mid_hit_a_sign_in_link_brings_the_marks_back(live_server, page, campaign, worker):
    submits = requests_to(page, SUBMIT)
    open_labelling(page, live_server, campaign)
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.context.clear_cookies()  # the session ended (signed out in another tab, or expired)
    page.keyboard.press("Enter")

    expect(page.locator("#status")).to_contain_text(
        "You are signed out (your session may have ended), so this HIT was not sent. Sign in again to send it: "
        "your marks are kept."
    )
    link = page.get_by_role("link", name="Sign in again")
    expect(link).to_have_attribute("href", f"/accounts/login/?next=%2Fwork%2F{campaign.id}%2F")
    assert len(submits) == 1 and not Vote.objects.exists()
    page.clock.resume()
    link.click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(WORKER_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/work/{campaign.id}/")
    expect(page.locator("#grid .tile.marked")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("your marks were kept")
    expect(page.locator("#submit")).to_be_enabled()
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1")
    assert Vote.objects.filter(worker=worker, answer=1).count() == 2


def test_a_failed_submit_is_sent_again_after_short_pauses_with_the_same_key(live_server, page, campaign, worker):
    submits = requests_to(page, SUBMIT)
    lost = [2]  # the first two attempts never reach the server

    def lose(route):
        if lost[0]:
            lost[0] -= 1
            return route.abort()
        route.continue_()

    open_labelling(page, live_server, campaign)
    page.route(SUBMIT, lose)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("Trying again (2 of 4)")
    page.clock.run_for(499)
    assert len(submits) == 1  # not at once
    with page.expect_request(SUBMIT):
        page.clock.run_for(1)
    expect(page.locator("#status")).to_contain_text("Trying again (3 of 4)")
    page.clock.run_for(999)
    assert len(submits) == 2
    with page.expect_request(SUBMIT):
        page.clock.run_for(1)
    expect(page.locator("#done-count")).to_have_text("1")
    keys = {request.post_data_json["idempotency_key"] for request in submits}
    assert len(submits) == 3 and len(keys) == 1
    assert Vote.objects.filter(worker=worker).count() == 6 and Vote.objects.filter(worker=worker, answer=1).count() == 1


def wait_for(condition, seconds: float = 10.0) -> None:
    """Poll the database until ``condition()`` holds (a request the page sends as it goes has no page to wait on)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the page's request did not arrive"
        time.sleep(0.1)


def lease_left(hit_id: int) -> float:
    return (Hit.objects.get(id=hit_id).expires_at - timezone.now()).total_seconds()


def test_leaving_the_page_gives_the_hit_back_and_a_reload_takes_it_again(live_server, page, campaign, worker):
    open_labelling(page, live_server, campaign)
    page.clock.resume()
    first = shown_hit(page)
    page.keyboard.press("2")

    page.reload()  # the page's goodbye, then its next-HIT request: the same HIT, its whole lease and marks kept
    expect(page.locator("#status")).to_contain_text("your marks were kept")
    assert shown_hit(page) == first
    wait_for(lambda: lease_left(first) > 800)  # whole again (counted from the HIT's creation, within the test's second)

    page.goto(f"{live_server.url}/work/")  # gone for good: its images go back to the queue within a minute
    wait_for(lambda: lease_left(first) <= 60)
    assert Hit.objects.get(id=first).status == Hit.Status.OPEN


def test_a_reloads_goodbye_that_arrives_after_the_new_page_does_not_cost_the_hit(live_server, page, campaign, worker):
    # CI: the goodbye of a reload reached the server after the reloaded page had taken its work back, and the
    # work's lease ended a minute later under the worker's eyes. Here the goodbye is held back on its way and
    # delivered by hand once the reloaded page shows the HIT.
    open_labelling(page, live_server, campaign)
    page.clock.resume()
    first = shown_hit(page)
    page.context.route(re.compile(r"/api/v1/hits/\d+/release/$"), lambda route: route.abort())

    page.reload()
    expect(page.locator("#grid .tile")).to_have_count(6)
    assert shown_hit(page) == first and lease_left(first) > 800
    hit_release(worker=worker, hit_id=first)  # the late goodbye
    assert lease_left(first) <= 60

    wait_for(lambda: lease_left(first) > 800)  # the page asked for its HIT once more, three seconds after showing it


def test_a_tab_closing_on_a_hit_another_tab_shows_leaves_it_with_that_tab(live_server, page, campaign, worker):
    open_labelling(page, live_server, campaign)
    page.clock.resume()
    first = shown_hit(page)
    page.keyboard.press("3")
    other = page.context.new_page()  # the same worker's second tab, on the same open HIT
    other.goto(f"{live_server.url}/work/{campaign.id}/")
    expect(other.locator("#grid .tile")).to_have_count(6)

    other.goto(f"{live_server.url}/work/")  # the second tab leaves: its goodbye shortens the lease
    wait_for(lambda: lease_left(first) <= 60)
    wait_for(lambda: lease_left(first) > 800)  # the first tab took it back, three seconds later

    expect(page.locator("#grid .tile.marked")).to_have_count(1)  # untouched meanwhile
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1")
    assert Vote.objects.filter(hit_id=first, answer=1).count() == 1
