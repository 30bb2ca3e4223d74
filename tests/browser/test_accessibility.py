"""Every page a person uses, audited with axe-core (WCAG 2.0-2.2 A and AA rules) in Debian's Chromium, as the
role that uses it and with real work on screen: no violation of impact "serious" or "critical" is allowed.
Then the worker pages under the keyboard alone: a worker marks images and submits a HIT, answers the quiz, draws
and confirms a box, and checks boxes, with Tab, Space, Enter, arrows and the pages' documented keys.

axe-core comes from the npm registry (package.json's devDependencies; `npm ci` installs it into node_modules/);
it is injected into the page under test, never served by the app."""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import expect

from annotation.models import BoxTask, Candidate, GoldItem, Hit, QuizAttempt, Vote
from annotation.services import hits, refit
from annotation.services.campaigns import campaign_create, campaign_set_state, gold_item_create
from annotation.services.manage import ledger_adjust
from export.models import DatasetVersion
from export.services import dataset_version_create
from tests.annotation.hits.conftest import qualify
from tests.browser.conftest import WORKER_PASSWORD
from tests.browser.test_box_verify_browser import drawn_by_others
from tests.browser.test_boxes_browser import answerable
from workers.roles import Role
from workers.services import account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BLOCKING = {"serious", "critical"}
CIRCLE, TRIANGLE = "n13873502", "n13879320"


def axe_violations(page) -> list[dict]:
    """The page's WCAG A/AA violations of impact serious or critical, as axe-core reports them."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` in the repository root (package.json devDependencies)"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def described(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:4]]
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']} — {targets}")
    return "\n".join(lines)


# ---- The world the pages show: a running campaign with labelling, quiz, box drawing and box checking work ----


@dataclass
class World:
    url: str
    campaign: object
    researcher: object
    admin: object
    worker: object  # qualified: labels, draws and checks boxes
    newcomer: object  # not qualified yet: takes the quiz


@pytest.fixture
def world(live_server, demo_images, settings, tmp_path) -> World:
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    researcher = demo_images(8)
    campaign = campaign_create(
        owner=researcher, name="Circles and triangles", wnids=[CIRCLE, TRIANGLE], boxes_enabled=True,
        gold_rate=0.0, images_per_hit=6, quiz_size=4, min_votes=1,
    )  # fmt: skip
    circles = Candidate.objects.filter(synset_id=int(CIRCLE[1:])).order_by("id")
    Candidate.objects.filter(id__in=list(circles.values_list("id", flat=True)[:4])).update(
        state=Candidate.State.ACCEPTED, posterior=0.995, model_version="a11y/em"
    )
    triangles = Candidate.objects.filter(synset_id=int(TRIANGLE[1:])).order_by("id")
    for i, candidate in enumerate(triangles[:4]):
        gold_item_create(candidate=candidate, present=i % 2 == 0)
    refit.campaign_counters_recount(campaign=campaign)
    campaign = campaign_set_state(campaign=campaign, state="running")
    # Of the four accepted circles: one awaits a coverage check, one a quality check, two a box.
    drawn_by_others(campaign, boxed=2, verifiers=("dave", "erin", "fred"), accepted=1)
    # A worker's labelling HIT, so that the dashboard's charts and workers table have something to show.
    voter = account_create(username="voter", password=WORKER_PASSWORD, role=Role.WORKER)
    qualify(voter, campaign)
    hit = hits.hit_next(worker=voter, campaign=campaign)
    answers = [
        {"item": item.id, "answer": "present" if n % 2 else "absent", "ms": 1500}
        for n, item in enumerate(hit.items.order_by("id"))
    ]
    hits.hit_submit(worker=voter, hit_id=hit.id, answers=answers, idempotency_key="a11y-voter")
    worker = account_create(username="alice", password=WORKER_PASSWORD, role=Role.WORKER)
    qualify(worker, campaign)
    return World(
        url=live_server.url,
        campaign=campaign,
        researcher=researcher,
        admin=account_create(username="admin", password="pw-admin-1", role=Role.ADMIN),
        worker=worker,
        newcomer=account_create(username="quinn", password=WORKER_PASSWORD, role=Role.WORKER),
    )


def as_user(page, world: World, user) -> None:
    """A session for ``user`` in this page's browser context (the sign-in form has its own audit)."""
    if user is None:
        return
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": world.url}])


# ---- Each page, opened by its user, waited for until its work or data is on screen ----------------------------


def home(page, w: World):
    page.goto(f"{w.url}/")


def login(page, w: World):
    page.goto(f"{w.url}/accounts/login/")


def login_failed(page, w: World):
    page.goto(f"{w.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not her password")
    page.locator("main").get_by_role("button", name="Sign in").click()
    expect(page.locator("main .error")).to_be_visible()


def signup(page, w: World):
    page.goto(f"{w.url}/accounts/signup/")


def taxonomy_search(page, w: World):
    page.goto(f"{w.url}/taxonomy/?q=circle")
    expect(page.locator(".results li").first).to_be_visible()


def synset_detail(page, w: World):
    page.goto(f"{w.url}/taxonomy/{CIRCLE}/")


def work_home(page, w: World):
    ledger_adjust(worker=w.worker, kind="bonus", amount="1.00", note="careful work", by=w.admin)
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/")
    expect(page.locator(".campaigns li")).to_have_count(1)
    page.locator("#adjustments summary").click()
    expect(page.locator("#adjustments li")).to_contain_text("careful work")


def label(page, w: World):
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/{w.campaign.id}/")
    expect(page.locator("#grid .tile").first).to_be_visible()
    expect(page.locator("#submit")).to_be_enabled()
    page.keyboard.press("1")
    expect(page.locator("#grid .tile.marked")).to_have_count(1)  # a marked and an unmarked image


def label_enlarged(page, w: World):
    label(page, w)
    page.keyboard.press("z")
    expect(page.locator("#zoom")).to_be_visible()


def label_finished(page, w: World):
    Candidate.objects.exclude(state=Candidate.State.ACCEPTED).update(state=Candidate.State.REJECTED)
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/{w.campaign.id}/")
    expect(page.get_by_role("link", name="Back to your campaigns")).to_be_visible()


def quiz(page, w: World):
    as_user(page, w, w.newcomer)
    page.goto(f"{w.url}/work/{w.campaign.id}/quiz/")
    expect(page.locator("#quiz-grid .tile")).to_have_count(4)
    expect(page.locator("#quiz-submit")).to_be_enabled()
    page.locator("#quiz-grid .tile").first.click()


def box_draw(page, w: World):
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/{w.campaign.id}/boxes/draw/")
    answerable(page, "#drawer")
    page.keyboard.press("b")  # a box on the image
    expect(page.locator("#status")).to_contain_text("Your box")


def box_quality(page, w: World):
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/{w.campaign.id}/boxes/quality/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    answerable(page, "#verifier")


def box_coverage(page, w: World):
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/work/{w.campaign.id}/boxes/coverage/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    answerable(page, "#verifier")


def campaigns(page, w: World):
    as_user(page, w, w.researcher)
    page.goto(f"{w.url}/research/")
    expect(page.locator("#campaigns tbody tr")).to_have_count(1)


def campaign_new(page, w: World):
    as_user(page, w, w.researcher)
    page.goto(f"{w.url}/research/new/?root={CIRCLE}")
    page.wait_for_load_state()
    page.get_by_label("the synset itself").check()
    page.get_by_role("button", name="Add to label set").click()
    expect(page.locator("#check-summary")).to_have_text("1 synset · no overlaps")
    page.locator("#root").fill("triangle")
    expect(page.locator("#root-results li").first).to_be_visible()


def dashboard(page, w: World):
    as_user(page, w, w.researcher)
    page.goto(f"{w.url}/research/{w.campaign.id}/")
    expect(page.locator("#throughput-chart")).to_have_attribute("data-loaded", re.compile(r"\d+"))
    expect(page.locator('#workers-table tr[data-worker="voter"]')).to_be_visible()
    expect(page.locator("#progress-table tbody tr")).to_have_count(2)
    page.locator("#policy-panel summary").click()


def export(page, w: World):
    dataset_version_create(user=w.researcher, name="circles", campaign_ids=[w.campaign.id])  # built at once (eager)
    assert DatasetVersion.objects.get().status == DatasetVersion.Status.DONE
    as_user(page, w, w.researcher)
    page.goto(f"{w.url}/research/{w.campaign.id}/")
    page.locator("#dataset-panel summary").click()
    expect(page.locator('#datasets-table tbody tr[data-status="done"]')).to_have_count(1)


def synset_inspect(page, w: World):
    as_user(page, w, w.researcher)
    page.goto(f"{w.url}/research/{w.campaign.id}/synsets/{CIRCLE}/")
    page.locator('#states [data-state="accepted"]').click()
    expect(page.locator("#candidates > div")).to_have_count(4)


def workers_manage(page, w: World):
    as_user(page, w, w.admin)
    page.goto(f"{w.url}/manage/workers/")
    expect(page.locator('#workers tr[data-worker="voter"]')).to_be_visible()
    page.locator("details.adjust summary").first.click()  # the bonus / correction form, checked open
    expect(page.locator("form.adjust").first).to_be_visible()


def refused(page, w: World):
    as_user(page, w, w.worker)
    page.goto(f"{w.url}/research/")
    expect(page.get_by_role("heading", level=1)).to_have_text("That did not work")


PAGES = [
    home, login, login_failed, signup, taxonomy_search, synset_detail, work_home, label, label_enlarged,
    label_finished, quiz, box_draw, box_quality, box_coverage, campaigns, campaign_new, dashboard, export,
    synset_inspect, workers_manage, refused,
]  # fmt: skip


@pytest.mark.parametrize("open_page", PAGES, ids=[p.__name__ for p in PAGES])
def test_the_page_has_no_serious_or_critical_accessibility_violations(page, world, open_page):
    # And asks nothing of another host (a CDN, a font service): everything a page uses is served by the app.
    here = urlsplit(world.url).netloc
    elsewhere = []
    page.on(
        "request",
        lambda r: (
            urlsplit(r.url).scheme in {"http", "https"} and urlsplit(r.url).netloc != here and elsewhere.append(r.url)
        ),
    )
    open_page(page, world)
    violations = axe_violations(page)
    assert violations == [], f"{page.url}:\n{described(violations)}"
    assert elsewhere == [], elsewhere


# ---- The worker pages under the keyboard alone ------------------------------------------------------------------


def active(page) -> dict:
    """The focused element: its id, its tile index (grid tiles), its focus outline as computed and the colour of
    what the outline is drawn on (the nearest ancestor with a background)."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            let under = el.parentElement;
            while (under && getComputedStyle(under).backgroundColor === "rgba(0, 0, 0, 0)") under = under.parentElement;
            return {id: el.id, index: el.dataset.index ?? null, pressed: el.getAttribute("aria-pressed"),
                    outline: style.outlineStyle, width: parseFloat(style.outlineWidth) || 0,
                    colour: style.outlineColor, under: getComputedStyle(under || document.body).backgroundColor};
        }"""
    )


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""

    def luminance(colour: str) -> float:
        rgb = [float(c) / 255 for c in re.findall(r"[\d.]+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted([luminance(first), luminance(second)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def assert_focus_visible(page) -> dict:
    """The focused element shows an outline (not removed by CSS) that stands out from what it is drawn on by 3:1
    (WCAG 1.4.11; the browser's own "auto" ring is drawn in two colours and is not measured)."""
    focused = active(page)
    assert focused["outline"] != "none" and focused["width"] > 0, f"no focus outline on {focused}"
    if focused["outline"] != "auto":
        assert contrast(focused["colour"], focused["under"]) >= 3, f"a faint focus outline: {focused}"
    return focused


def tab_to(page, element_id: str, *, key: str = "Tab", presses: int = 40) -> None:
    """Press Tab (or Shift+Tab) until the element of that id has the focus, as a keyboard user would."""
    for _ in range(presses):
        if active(page)["id"] == element_id:
            return
        page.keyboard.press(key)
    raise AssertionError(f"#{element_id} never took the focus in {presses} presses of {key}")


def test_a_worker_marks_images_and_submits_a_hit_with_the_keyboard_alone(page, world):
    as_user(page, world, world.worker)
    page.goto(f"{world.url}/work/{world.campaign.id}/")
    expect(page.locator("#submit")).to_be_enabled()
    tiles = page.locator("#grid .tile")
    assert assert_focus_visible(page)["index"] == "0"  # the first image has the focus, and shows it
    expect(tiles.first.get_by_role("img")).to_have_attribute("alt", re.compile(r"^Image 1 of \d+$"))
    per_row = page.evaluate(
        "[...document.querySelectorAll('#grid .tile')].filter((t, _, a) => t.offsetTop === a[0].offsetTop).length"
    )
    page.keyboard.press("ArrowDown")  # a row down, as laid out
    assert active(page)["index"] == str(min(per_row, tiles.count() - 1))
    page.keyboard.press("ArrowUp")
    assert active(page)["index"] == "0"

    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # the browser's own focus order reaches the third image
    assert active(page)["index"] == "2"
    page.keyboard.press("Space")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Space")  # the second image again: unmarked
    expect(tiles.nth(1)).to_have_attribute("aria-pressed", "false")
    expect(tiles.nth(2)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name=re.compile(r"^Image 3 of \d+$"))).to_have_attribute("aria-pressed", "true")

    tab_to(page, "submit")
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1", timeout=20_000)
    hit = Hit.objects.get(worker=world.worker, status="submitted")
    assert Vote.objects.filter(hit=hit).count() == hit.items.count()
    assert Vote.objects.filter(hit=hit, answer=1).count() == 1


def test_a_worker_answers_the_quiz_with_the_keyboard_alone(page, world):
    as_user(page, world, world.newcomer)
    page.goto(f"{world.url}/work/{world.campaign.id}/quiz/")
    expect(page.locator("#quiz-submit")).to_be_enabled()
    attempt = QuizAttempt.objects.get(worker=world.newcomer)
    truth = dict(GoldItem.objects.values_list("id", "present"))
    assert assert_focus_visible(page)["pressed"] == "false"  # on the first image
    for gold_id in attempt.items:
        if truth[gold_id]:
            page.keyboard.press("Space")
        page.keyboard.press("Tab")
    assert active(page)["id"] == "quiz-submit"
    assert_focus_visible(page)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/work/{world.campaign.id}/$"), timeout=20_000)
    attempt.refresh_from_db()
    assert (attempt.score, attempt.passed) == (1.0, True)


def test_the_quiz_takes_the_labelling_pages_keys(page, world):
    # Arrows move among the images, a number toggles one and takes the focus there, Enter sends: the keys a worker
    # then uses on every HIT (the quiz had only Tab, Space and Enter)
    as_user(page, world, world.newcomer)
    page.goto(f"{world.url}/work/{world.campaign.id}/quiz/")
    expect(page.locator("#quiz-submit")).to_be_enabled()
    tiles = page.locator("#quiz-grid .tile")
    expect(page.locator(".help")).to_contain_text("the same keys as when labelling")

    page.keyboard.press("3")
    expect(tiles.nth(2)).to_have_attribute("aria-pressed", "true")
    focused = "Array.from(document.querySelectorAll('#quiz-grid .tile')).indexOf(document.activeElement)"
    assert page.evaluate(focused) == 2
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == 1
    page.keyboard.press("Space")
    expect(tiles.nth(1)).to_have_attribute("aria-pressed", "true")
    for _ in range(6):
        page.keyboard.press("ArrowRight")  # stops at the last image
    page.keyboard.press("Space")
    expect(tiles.nth(3)).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("3")
    expect(tiles.nth(2)).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")

    attempt = QuizAttempt.objects.get(worker=world.newcomer)
    for _ in range(100):  # scored: the page then says the score, or (all right by chance) goes on to labelling
        attempt.refresh_from_db()
        if attempt.score is not None:
            break
        page.wait_for_timeout(200)
    assert attempt.score is not None  # sent, with images 2 and 4 marked
    marked = [gold_id for i, gold_id in enumerate(attempt.items) if i in (1, 3)]
    truth = dict(GoldItem.objects.values_list("id", "present"))
    expected = sum(truth[g] == (g in marked) for g in attempt.items) / len(attempt.items)
    assert attempt.score == pytest.approx(expected)


def test_enter_on_a_top_bar_link_during_the_quiz_follows_it_and_sends_nothing(page, world):
    as_user(page, world, world.newcomer)
    page.goto(f"{world.url}/work/{world.campaign.id}/quiz/")
    expect(page.locator("#quiz-submit")).to_be_enabled()
    page.keyboard.press("Shift+Tab")  # from the first image back into the top bar: "Sign out quinn", then "Work"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent") == "Work"
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{world.url}/work/")
    assert list(QuizAttempt.objects.values_list("score", "passed")) == [(None, None)]


def test_a_worker_draws_confirms_and_skips_with_the_keyboard_alone(page, world):
    as_user(page, world, world.worker)
    page.goto(f"{world.url}/work/{world.campaign.id}/boxes/draw/")
    expect(page.locator("#count")).to_have_text("2")
    answerable(page, "#drawer")
    tab_to(page, "canvas")
    assert_focus_visible(page)
    page.keyboard.press("b")  # the documented keyboard path: B, arrows, Shift+arrows, Enter
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator("#status")).to_contain_text("Your box")
    page.keyboard.press("Enter")
    expect(page.locator("#position")).to_have_text("2")
    answerable(page, "#drawer")

    tab_to(page, "skip")  # the buttons are in the focus order too, and Enter presses the one focused
    assert_focus_visible(page)
    with page.expect_request(re.compile(r"/api/v1/box-tasks/\d+/submit/$")) as request:
        page.keyboard.press("Enter")
    assert [a["answer"] for a in request.value.post_data_json["answers"]] == ["box", "skip"]
    expect(page.locator("#done-count")).to_have_text("1")


def test_a_worker_checks_a_box_with_the_keyboard_alone_and_leaves_by_a_top_bar_link(page, world):
    as_user(page, world, world.worker)
    page.goto(f"{world.url}/work/{world.campaign.id}/boxes/quality/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    answerable(page, "#verifier")
    assert assert_focus_visible(page)["index"] == "0"
    page.keyboard.press("Space")  # yes, the box is tight
    expect(page.locator("#grid .tile")).to_have_attribute("aria-pressed", "true")
    tab_to(page, "submit")
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text("1")
    task = BoxTask.objects.get(worker=world.worker, kind="quality")
    assert list(task.items.values_list("answer__answer", flat=True)) == [1]  # BoxAnswer.Answer.YES

    # Nothing left to check: Enter on the top bar's "Work" link follows it (the page took Enter for itself).
    expect(page.locator("#idle")).to_be_visible()
    page.get_by_role("link", name="Work", exact=True).focus()  # where Shift+Tab from the page's end arrives
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{world.url}/work/")
