"""A researcher creates a campaign from the taxonomy browser (boxes on, then off again), watches the crowd's work
reach the charts, blocks a spammer; an admin downloads the payouts CSV. Debian's Chromium against the live server."""

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from annotation.models import Campaign, CampaignSynset, Candidate
from annotation.services import refit, rollups
from tests.annotation.hits.conftest import make_candidates, qualify
from tests.dashboard.conftest import submit
from workers.models import LedgerEntry, Qualification
from workers.roles import Role
from workers.services import account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WHIPPET, IBIZAN, DOG = "n02091134", "n02091244", "n02084071"


@pytest.fixture
def dog_taxonomy():
    # Live-server tests run in committed transactions that are flushed afterwards, so they seed their own data.
    call_command("import_wordnet", "--root", "dog.n.01", "--no-progress", stdout=StringIO(), stderr=StringIO())


def sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_researcher_creates_campaign_watches_charts_blocks_spammer_admin_downloads_payouts(
    live_server, page, browser, dog_taxonomy, tmp_path
):
    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    sign_in(page, live_server, researcher)

    # From the taxonomy browser: whippet itself, plus a pasted wnid; the check runs live.
    page.goto(f"{live_server.url}/taxonomy/{WHIPPET}/")
    page.locator("#start-campaign").click()
    expect(page).to_have_url(re.compile(rf"/research/new/\?root={WHIPPET}$"))
    page.wait_for_load_state()  # its script attached: a click before that submitted the form natively (a reload)
    page.get_by_label("the synset itself").check()
    page.get_by_role("button", name="Add to label set").click()
    expect(page.locator("#check-summary")).to_have_text("1 synset · no overlaps")
    # The synset search lists wnids with their words (it once read a field the API does not send: "undefined").
    page.locator("#root").fill("whippet")
    first = page.locator("#root-results li").first
    expect(first).to_contain_text(f"{WHIPPET} whippet")
    expect(first.locator(".gloss")).to_contain_text("small slender dog")  # the gloss on screen, not in a tooltip
    expect(page.locator("#root-results")).not_to_contain_text("undefined")
    first.get_by_role("button").click()
    expect(page.locator("#root")).to_have_value(WHIPPET)
    page.locator("#wnids").fill(f"{WHIPPET}\n{IBIZAN}\n{DOG}")
    # Names beside the codes: which synset is the ancestor, and what the label set holds.
    expect(page.locator("#check-overlaps")).to_contain_text(f"dog ({DOG}) › whippet ({WHIPPET})")
    expect(page.locator("#check-members li")).to_have_text(
        [f"{WHIPPET} whippet", f"{IBIZAN} Ibizan hound, Ibizan Podenco", f"{DOG} dog, domestic dog, Canis familiaris"]
    )
    page.locator("#wnids").fill(f"{WHIPPET}\n{IBIZAN}")
    expect(page.locator("#check-summary")).to_have_text("2 synsets · no overlaps")
    page.get_by_label("Name").fill("Hounds")
    page.get_by_label("Images per HIT").fill("4")
    page.get_by_label("Gold rate").fill("0")
    page.get_by_label("Quiz pass mark").fill("0.9")
    page.get_by_label("Collect bounding boxes").check()
    page.get_by_role("button", name="Create campaign").dblclick()  # an impatient double click: one campaign

    expect(page.get_by_role("heading", level=1)).to_contain_text("Hounds")
    campaign = Campaign.objects.get(name="Hounds")
    assert page.url == f"{live_server.url}/research/{campaign.id}/"
    assert (campaign.owner, campaign.images_per_hit, campaign.gold_rate) == (researcher, 4, 0.0)
    assert campaign.boxes_enabled and campaign.quiz_pass_mark == 0.9
    expect(page.locator('[data-policy="boxes_enabled"]')).to_have_text("on")
    expect(page.locator('#boxes-panel [data-box="images"]')).to_have_text("0")  # nothing accepted yet
    page.locator("#start").click()
    expect(page.locator("#campaign-state")).to_have_text("running", timeout=15_000)  # slow under load
    # Only the changes a running campaign allows are offered.
    expect(page.locator("#start")).to_be_disabled()
    expect(page.locator("#pause")).to_be_enabled()

    # The researcher raises the target while the campaign runs.
    page.locator("#policy-panel summary").click()
    page.locator('#policy-form input[name="target_per_synset"]').fill("7")
    page.locator('#policy-form input[name="quiz_pass_mark"]').fill("0.8")
    page.locator("#policy-boxes").uncheck()  # and decides against boxes after all
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator('[data-policy="target_per_synset"]')).to_have_text("7")
    expect(page.locator('[data-policy="boxes_enabled"]')).to_have_text("off")
    expect(page.locator("#boxes-panel")).to_be_hidden()  # it never collected any
    campaign.refresh_from_db()
    assert (campaign.target_per_synset, campaign.quiz_pass_mark, campaign.boxes_enabled) == (7, 0.8, False)

    # The crowd works: two workers submit a HIT each; the charts pick it up without a reload.
    for wnid in (WHIPPET, IBIZAN):
        make_candidates(wnid, 4)
    campaign.refresh_from_db()
    good = account_create(username="good_worker", password="pw-worker-1", role=Role.WORKER)
    spammer = account_create(username="spammer", password="pw-worker-2", role=Role.WORKER)
    for worker in (good, spammer):
        qualify(worker, campaign)
    submit(good, campaign, ["present", "present", "absent", "present"], 2000, "browser-good-1")
    submit(spammer, campaign, ["present"] * 4, 100, "browser-spam-1")

    chart = page.locator("#throughput-chart")
    expect(chart).to_have_attribute("data-answers", "8", timeout=15_000)
    expect(chart).to_have_attribute("data-loaded", "60")
    assert page.evaluate("Chart.getChart('throughput-chart').data.datasets[0].data.reduce((a, b) => a + b, 0)") == 8
    expect(page.locator('[data-stat="answers"]')).to_have_text("8")
    expect(page.locator("#progress-note")).to_contain_text("synsets done")
    expect(page.locator("#all-done")).to_be_hidden()  # far from the targets
    expect(page.locator("#pay-chart")).to_have_attribute("data-loaded", "2", timeout=20_000)

    # Estimated precision is shown to a tenth of a percent, rounded down: 99.92% is not "100%".
    Candidate.objects.filter(synset_id=int(WHIPPET[1:])).update(state=Candidate.State.ACCEPTED, posterior=0.9992)
    rollups.synset_activity_recount(campaign_id=campaign.id)
    # A refit found that a quarter of the whippet's negatives are look-alikes (kinds with u > 0).
    CampaignSynset.objects.filter(campaign=campaign, synset_id=int(WHIPPET[1:])).update(
        item_kinds={
            "shifts": [-1, -0.5, 0, 0.5, 1, 1.5],
            "absent": [0.1, 0, 0.65, 0.15, 0.1, 0],
            "present": [0, 0, 1, 0, 0, 0],
        }
    )
    page.reload()  # rather than wait up to 15 s for the quality panel's next poll
    expect(page.locator("#precision")).to_have_text("99.9%", timeout=15_000)
    expect(page.locator("#precision-basis")).to_have_text(" (mean posterior of 4 consensus labels)")
    whippet = page.locator(f'#progress-table tr[data-wnid="{WHIPPET}"]')
    expect(whippet).to_contain_text("99.9%")
    look_alikes = whippet.locator("td").nth(9)
    expect(look_alikes).to_have_text("25%")
    expect(look_alikes).to_have_attribute("title", re.compile("fool workers more than the campaign's typical"))
    expect(page.locator(f'#progress-table tr[data-wnid="{IBIZAN}"] td').nth(9)).to_have_text("–")  # no refit yet

    # A campaign of thousands of synsets shows 100 rows: the researcher finds one by name or wnid.
    page.locator("#progress-filter").fill("ibiz")
    expect(page.locator("#progress-table tbody tr")).to_have_count(1)
    expect(page.locator(f'#progress-table tr[data-wnid="{IBIZAN}"]')).to_be_visible()
    expect(page.locator("#progress-shown")).to_have_text(re.compile(r"^1 of \d+ synsets match “ibiz”\.$"))
    page.locator("#progress-filter").fill(WHIPPET)
    expect(page.locator(f'#progress-table tr[data-wnid="{WHIPPET}"]')).to_be_visible()
    page.locator("#progress-filter").fill("")
    # The server sorts and pages: the page asks for the order chosen, 100 rows of it.
    with page.expect_request(lambda r: "/dashboard/progress/?" in r.url and "sort=precision" in r.url) as asked:
        page.locator("#progress-sort").select_option("precision")
    assert "limit=100" in asked.value.url
    expect(page.locator("#progress-table tbody tr").first).to_have_attribute("data-wnid", WHIPPET)

    # Block the spammer from the workers table, with a reason.
    row = page.locator('#workers-table tr[data-worker="spammer"]')
    row.get_by_placeholder("reason").fill("Says present to everything in 0.1 s")
    row.get_by_role("button", name="Block").click()
    expect(row.locator("td").nth(6)).to_have_text("blocked")
    expect(page.locator("#blocked")).to_contain_text("spammer — Says present to everything in 0.1 s")
    assert Qualification.objects.get(worker=spammer, campaign=campaign).status == "blocked"

    # An admin downloads the payouts CSV.
    admin = account_create(username="admin", password="pw-admin-1", role=Role.ADMIN)
    admin_page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    sign_in(admin_page, live_server, admin)
    admin_page.goto(f"{live_server.url}/manage/workers/")
    expect(admin_page.locator('#workers tr[data-worker="spammer"]')).to_contain_text("blocked")
    with admin_page.expect_download() as download:
        admin_page.locator("#payouts-csv").click()
    path = tmp_path / "payouts.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "worker_id,username,external_id,unpaid_entries,unpaid_amount,up_to_entry"
    assert [line.split(",")[1:5] for line in lines[1:]] == [
        ["good_worker", "", "1", "0.10"],
        ["spammer", "", "1", "0.10"],
    ]

    # A bonus for the good worker, from their row: the unpaid figure moves and the page says what was added.
    row = admin_page.locator('#workers tr[data-worker="good_worker"]')
    row.get_by_text("Bonus or correction").click()
    row.get_by_label("Amount for good_worker").fill("1.5")
    row.get_by_label("Note for good_worker").fill("Careful on hard images")
    row.get_by_role("button", name="Add").click()
    expect(admin_page.locator(".messages")).to_contain_text("good_worker: bonus of 1.50 added, unpaid.")
    expect(admin_page.locator('#workers tr[data-worker="good_worker"] td').nth(6)).to_have_text("1.60")

    # Once paid, approved: the first click only says what it would mark paid; the second does it.
    admin_page.get_by_text("Approve all unpaid: 1.70 to 2 workers").click()
    confirm = admin_page.get_by_role("button", name="Mark 1.70 paid")
    expect(confirm).to_be_visible()
    assert LedgerEntry.objects.filter(paid=False).count() == 3  # nothing approved by the first click
    confirm.click()
    expect(admin_page.locator(".messages")).to_contain_text("Approved 3 ledger entries, 1.70 in total.")
    expect(admin_page.locator("#approve")).to_have_text("Nothing unpaid")
    expect(admin_page.locator("#approve")).to_be_disabled()
    assert not LedgerEntry.objects.filter(paid=False).exists()
    admin_page.context.close()


def test_a_campaign_of_many_synsets_finds_the_synset_to_import_images_for(live_server, page, dog_taxonomy, monkeypatch):
    from io import BytesIO

    from PIL import Image

    from annotation.services.campaigns import campaign_create
    from frontend import views_research

    # Above SYNSET_LIST_LIMIT synsets the page lists none: lowered here so that two synsets count as many.
    monkeypatch.setattr(views_research, "SYNSET_LIST_LIMIT", 1)
    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET, IBIZAN])
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#synset-count")).to_contain_text("2 synsets")
    expect(page.locator("#synset-chips")).to_have_count(0)

    field = page.locator("#import-synset")
    field.fill("ibiz")  # the field suggests from the server's search
    expect(page.locator(f'#import-synset-options option[value="{IBIZAN}"]')).to_have_count(1)
    expect(page.locator("#import-synset-options option")).to_have_count(1)
    field.fill(IBIZAN)
    data = BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(data, "PNG")
    page.locator("#import-files").set_input_files(
        [
            {"name": "hound.png", "mimeType": "image/png", "buffer": data.getvalue()},
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"},
        ]
    )
    # Files and URLs at once: one import takes one kind, and the page says so instead of dropping the URLs.
    page.locator("#import-urls").fill("https://example.org/hound.jpg")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-status")).to_contain_text("one kind at a time")
    page.locator("#import-urls").fill("")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-status")).to_contain_text("1 accepted", timeout=20_000)
    expect(page.locator("#import-status")).to_contain_text("1 rejected")
    # and which file was rejected, with the reason
    expect(page.locator("#import-rejected li")).to_have_count(1)
    expect(page.locator("#import-rejected li")).to_contain_text("notes.png — ")
    expect(page.locator("#import-rejected")).not_to_contain_text("undefined")
    assert Candidate.objects.filter(synset_id=int(IBIZAN[1:])).count() == 1
    # URLs go one a line, as the label says: a line with spaces is one item (refused with a reason), not three.
    page.locator("#import-files").set_input_files([])
    page.locator("#import-urls").fill("not a url\n\n   https://example.invalid/a hound.jpg  \n")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/image-imports/") and r.method == "POST") as sent:
        page.get_by_role("button", name="Import").click()
    assert sent.value.post_data_json["urls"] == ["not a url", "https://example.invalid/a hound.jpg"]


def test_a_researchers_override_on_the_synset_page_is_confirmed_and_cancel_records_nothing(
    live_server, page, dog_taxonomy
):
    from annotation.models import DecisionOverride
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET])
    first, _ = make_candidates(WHIPPET, 2)
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/synsets/{WHIPPET}/")
    page.locator('#states [data-state="new"]').click()
    expect(page.locator("#candidates-status")).to_have_text("2 new candidates.")

    # Cancel at the reason prompt: nothing is recorded
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#candidates > div").first.get_by_role("button", name="Reject").click()
    expect(page.locator("#candidates-status")).to_have_text("2 new candidates.")
    assert not DecisionOverride.objects.exists()

    # Accept with a reason: the status line keeps the confirmation ahead of the new count
    page.once("dialog", lambda dialog: dialog.accept("clearly a whippet"))
    page.locator("#candidates > div").first.get_by_role("button", name="Accept").click()
    expect(page.locator("#candidates-status")).to_have_text(
        f"Candidate {first.id}: new → accepted (recorded). 1 new candidate."
    )
    override = DecisionOverride.objects.get()
    assert (override.candidate_id, override.action, override.reason) == (first.id, "accept", "clearly a whippet")


def test_a_researcher_judges_the_images_the_audit_draws_and_sees_the_sampled_precision(live_server, page, dog_taxonomy):
    from annotation.models import AuditJudgement, DecisionOverride
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET])
    accepted = make_candidates(WHIPPET, 3)
    Candidate.objects.filter(id__in=[c.id for c in accepted]).update(state=Candidate.State.ACCEPTED, posterior=0.99)
    refit.campaign_counters_recount(campaign=campaign)
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/synsets/{WHIPPET}/")
    summary, cards = page.locator("#audit-summary"), page.locator("#audit-sample > div")
    expect(summary).to_have_text("No accepted image judged yet. 3 accepted images not judged yet.")
    expect(cards).to_have_count(3)

    right = int(cards.nth(0).get_attribute("data-audit"))
    cards.nth(0).get_by_role("button", name=re.compile(r": yes, it shows")).click()
    expect(cards).to_have_count(2)
    wrong = int(cards.nth(0).get_attribute("data-audit"))
    cards.nth(0).get_by_role("button", name=re.compile(r": no, it does not")).click()
    expect(page.locator("#audit-status")).to_have_text(f"#{wrong}: wrong (recorded). Change #{wrong} to right")
    # A slip of the key is turned round from the status line, and back again: one verdict per image throughout.
    page.get_by_role("button", name=f"Change #{wrong} to right").click()
    expect(page.locator("#audit-status")).to_have_text(
        f"#{wrong}: changed to right (recorded). Change #{wrong} to wrong"
    )
    expect(summary).to_contain_text("2 of 2 judged right")
    page.get_by_role("button", name=f"Change #{wrong} to wrong").click()
    expect(page.locator("#audit-status")).to_contain_text(f"#{wrong}: changed to wrong (recorded).")
    expect(summary).to_have_text(
        "1 of 2 judged right: sampled precision 50.0% (95% interval 9.4%–90.5%); the model expected 99.0% of the "
        "same images. The model's estimate is above the audit's interval: its posteriors are over-confident here. "
        f"Judged wrong and still accepted: #{wrong}. "
        "1 accepted image not judged yet."
    )
    assert dict(AuditJudgement.objects.values_list("candidate_id", "correct")) == {right: True, wrong: False}
    # The last one by keyboard (Y answers for the first image drawn); its thumbnail links to the larger image.
    last = Candidate.objects.select_related("image").get(id=int(cards.nth(0).get_attribute("data-audit")))
    expect(cards.nth(0).locator("a.thumb")).to_have_attribute("href", re.compile(re.escape(last.image.medium.name)))
    page.keyboard.press("y")
    expect(summary).to_contain_text("2 of 3 judged right")
    expect(summary).to_contain_text("Every accepted image has been judged.")
    expect(cards).to_have_count(0)

    # What the audit found wrong is one click from rejected: an override with the audit as its reason.
    page.get_by_role("button", name=f"Reject #{wrong}").click()
    expect(page.locator("#audit-status")).to_have_text(f"#{wrong}: accepted → rejected (recorded).")
    expect(summary).not_to_contain_text("Judged wrong and still accepted")
    expect(page.locator("#audit-reject button")).to_have_count(0)
    override = DecisionOverride.objects.get()
    assert (override.candidate_id, override.action, override.reason) == (
        wrong,
        "reject",
        "judged wrong in the precision audit",
    )
    assert Candidate.objects.get(id=wrong).state == Candidate.State.REJECTED

    # The campaign's dashboard sets the sampled precision beside the model's estimate.
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#audited-precision")).to_have_text("66.6%")  # rounded down, as every precision there
    expect(page.locator("#audit-basis")).to_have_text(
        " (2 of 3 judged right; 95% interval 20.7%–93.8%; the model expected 99.0% of them, above the interval: "
        "over-confident)"
    )
    # This campaign has no gold items: the page says that no worker can start (they qualify through a quiz of them).
    expect(page.locator("#no-gold")).to_be_visible()
    expect(page.locator("#no-gold")).to_contain_text("Workers cannot start yet")
    # ... and the progress table the synset's own audit, flagged: a campaign of thousands of synsets sorts it first.
    row = page.locator(f'#progress-table tr[data-wnid="{WHIPPET}"]')
    audited = row.locator("td").nth(8)
    expect(audited).to_have_text("2/3")
    expect(audited).to_have_attribute("title", re.compile(r"^Sampled precision 66\.6% \(95% interval 20\.7%–93\.8%\)"))
    badge = row.locator(".badge.flag-overconfident")
    expect(badge).to_have_attribute("title", re.compile("below the model's estimate"))
    expect(page.locator("#progress-note")).to_contain_text("· 1 over-confident by the audit")
    # A gold item (here added directly): the next refresh of the page takes the notice away.
    from annotation.services.campaigns import gold_item_create

    gold_item_create(candidate=make_candidates(WHIPPET, 1)[0], present=True)
    expect(page.locator("#no-gold")).to_be_hidden(timeout=15_000)


def test_the_research_pages_fit_a_phone_screen_and_their_tables_scroll_on_their_own(live_server, browser, dog_taxonomy):
    # The progress, workers and campaigns tables are wider than a phone: the page stayed 390 px wide for the
    # header only, and the tables stretched the document to ~1,000 px (pan and zoom to read any figure).
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    admin = account_create(username="admin", password="pw-admin-1", role=Role.ADMIN)
    account_create(username="a-worker-with-a-rather-long-name", password="pw-worker-1", role=Role.WORKER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET, IBIZAN])
    make_candidates(WHIPPET, 2)
    for user, tables in (
        (researcher, {"/research/": "#campaigns", f"/research/{campaign.id}/": "#progress-table"}),
        (admin, {"/manage/workers/": "#workers"}),
    ):
        context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        page = context.new_page()
        sign_in(page, live_server, user)
        for path, selector in tables.items():
            page.goto(f"{live_server.url}{path}")
            table = page.locator(selector)
            expect(table.locator("tbody tr").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, path
            # Every column is still there, a sideways scroll away.
            assert table.evaluate("t => t.scrollWidth > t.clientWidth") or box["width"] < 390, path
        context.close()


def test_finishing_a_campaign_asks_first_and_cancel_changes_nothing(live_server, page, dog_taxonomy):
    # Finish sits beside Pause and cannot be undone (a finished campaign never runs again): one click ended it.
    from annotation.services.campaigns import campaign_create, campaign_set_state

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_set_state(
        campaign=campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET]), state="running"
    )
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#finish")).to_be_enabled()
    asked = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("#finish").click()
    expect(page.locator("#campaign-state")).to_have_text("running")
    assert asked == ["Finish “Hounds”? Workers get no more work from it, and a finished campaign cannot run again."]
    campaign.refresh_from_db()
    assert campaign.state == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#finish").click()
    expect(page.locator("#campaign-state")).to_have_text("finished")
    campaign.refresh_from_db()
    assert campaign.state == "finished"


def test_the_throughput_chart_draws_active_workers_on_a_scale_of_their_own(live_server, page, dog_taxonomy):
    # Workers shared the right-hand axis with HITs per hour: 6 workers beside 240 HITs an hour drew a line
    # flat on the floor of the chart (the demo's dashboard).
    from annotation.services.campaigns import campaign_create, campaign_set_state

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET], images_per_hit=2, gold_rate=0.0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    make_candidates(WHIPPET, 4)
    for i in range(2):
        worker = account_create(username=f"worker{i}", password=f"pw-worker-{i}x", role=Role.WORKER)
        qualify(worker, campaign)
        submit(worker, campaign, ["present", "absent"], 1500, f"chart-key-{i}")
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#throughput-chart")).to_have_attribute("data-answers", "4")
    # How high the latest point of each series stands, as a share of the plot's height.
    heights = page.evaluate(
        """() => {
          const chart = Chart.getChart('throughput-chart'), area = chart.chartArea;
          return chart.data.datasets.map((d) => {
            const values = d.data.filter((v) => v > 0);
            const y = chart.scales[d.yAxisID].getPixelForValue(values[values.length - 1]);
            return [d.label, (area.bottom - y) / (area.bottom - area.top)];
          });
        }"""
    )
    assert [label for label, _ in heights] == ["answers / min", "HITs / hour", "active workers"]
    assert all(height >= 0.5 for _, height in heights), heights


def test_the_throughput_spans_are_tabs_that_arrow_keys_move_between(live_server, page, dog_taxonomy):
    # role=tab without a tabpanel, a roving tab stop or arrow keys (QA): a keyboard user tabbed through all three.
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET])
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    throughput = []
    page.on("request", lambda r: throughput.append(r.url) if "/dashboard/throughput/" in r.url else None)
    hour = page.get_by_role("tab", name="Last hour")
    expect(hour).to_have_attribute("tabindex", "0")
    expect(page.get_by_role("tab", name="Last day")).to_have_attribute("tabindex", "-1")

    hour.focus()
    page.keyboard.press("ArrowRight")
    day = page.get_by_role("tab", name="Last day", selected=True)
    expect(day).to_be_focused()
    expect(page.get_by_role("tabpanel")).to_have_attribute("aria-labelledby", "window-day")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Whole campaign", selected=True)).to_be_focused()
    page.keyboard.press("ArrowRight")  # round to the first
    expect(page.get_by_role("tab", name="Last hour", selected=True)).to_be_focused()
    assert any("window=day" in url for url in throughput) and any("window=all" in url for url in throughput)


def test_the_time_to_finish_says_why_it_cannot_be_told(live_server, page, dog_taxonomy):
    # "– to finish at this rate" gave its reason in a tooltip only: nothing on a phone, nothing read aloud.
    from annotation.services.campaigns import campaign_create, campaign_set_state

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET], images_per_hit=2, gold_rate=0.0)
    campaign_set_state(campaign=campaign, state="running")
    make_candidates(WHIPPET, 2)
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    card = page.locator("#summary div").filter(has=page.locator('[data-stat="eta"]'))
    expect(card.locator('[data-stat="eta"]')).to_have_text("–")
    why = "time to finish: 1 synset has no accepted image yet to estimate its yield"
    expect(card.locator("span")).to_have_text(why)


def test_the_dashboard_says_when_its_figures_stop_updating(live_server, browser, dog_taxonomy):
    # Signed out in another tab (or the demo server stopped), the dashboard went on showing its last figures
    # under "refreshed every 5 s · updated <time>" as if they were live.
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET])
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#refreshed")).to_contain_text("updated")
    other = context.new_page()
    other.goto(f"{live_server.url}/research/")
    other.get_by_role("button", name="Sign out researcher").click()
    refreshed = page.locator("#refreshed")
    expect(refreshed).to_contain_text("not updated since", timeout=15_000)
    expect(refreshed).to_contain_text("you are signed out: sign in again to see live figures")
    expect(refreshed).to_have_class(re.compile(r"\bwarn\b"))
    context.close()


def test_each_synsets_progress_bar_reaches_the_target_with_what_is_still_to_accept(live_server, page, dog_taxonomy):
    # "still to accept" was stacked after the rejected and unresolved images: bars ended anywhere (40 on an axis
    # for a target of 30) and no bar showed where the target was.
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET, IBIZAN], target_per_synset=5)
    CampaignSynset.objects.filter(campaign=campaign, synset_id=int(WHIPPET[1:])).update(accepted=2, rejected=3)
    CampaignSynset.objects.filter(campaign=campaign, synset_id=int(IBIZAN[1:])).update(accepted=1, rejected=1)
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#progress-chart")).to_have_attribute("data-loaded", "2")
    bars = page.evaluate(
        """() => {
          const chart = Chart.getChart('progress-chart'), x = chart.scales.x;
          const ends = chart.data.datasets.map((d, i) => chart.getDatasetMeta(i).data.map((bar) => bar.x));
          return { labels: chart.data.datasets.map((d) => d.label), ends, target: x.getPixelForValue(5) };
        }"""
    )
    assert bars["labels"] == ["accepted", "still to accept", "rejected", "unresolved"]
    assert [round(end) for end in bars["ends"][1]] == [round(bars["target"])] * 2  # both bars reach the target


def test_the_pay_charts_legend_says_what_red_bars_mean(live_server, page, dog_taxonomy, settings):
    # The legend's swatch took the first bar's colour: red whenever the lowest-paid worker was below the floor,
    # so "effective hourly pay" read as red and the red bars' meaning was nowhere.
    from annotation.services.campaigns import campaign_create, campaign_set_state

    settings.PAY_FLOOR_PER_HOUR = Decimal("100")
    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds", wnids=[WHIPPET], images_per_hit=2, gold_rate=0.0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    make_candidates(WHIPPET, 2)
    worker = account_create(username="worker0", password="pw-worker-0x", role=Role.WORKER)
    qualify(worker, campaign)
    submit(worker, campaign, ["present", "absent"], 1500, "pay-chart-key-0")
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    expect(page.locator("#pay-chart")).to_have_attribute("data-loaded", "1")
    legend = page.evaluate(
        "() => Chart.getChart('pay-chart').legend.legendItems.map((item) => [item.text, item.fillStyle])"
    )
    assert legend[0] == ["effective hourly pay (red: below the floor)", "#2e7d32"]


def test_the_progress_table_pages_through_every_synset_a_hundred_at_a_time(live_server, page, dog_taxonomy):
    # The table showed the first 100 synsets of the order chosen and nothing reached the rest but the API.
    from annotation.services.campaigns import campaign_create
    from taxonomy.models import Synset
    from taxonomy.selectors import synset_descendants

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    leaves = sorted(s.wnid for s in synset_descendants(synset=Synset.objects.get(name="dog.n.01"), leaves_only=True))
    assert len(leaves) > 100
    campaign = campaign_create(owner=researcher, name="Dogs", wnids=leaves)
    sign_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/research/{campaign.id}/")
    rows, shown = page.locator("#progress-table tbody tr"), page.locator("#progress-shown")
    page.locator("#progress-sort").select_option("precision")  # none has a precision yet: by wnid
    expect(shown).to_have_text(f"Synsets 1–100 of {len(leaves)} shown; find one by name or wnid above.")
    expect(rows.first).to_have_attribute("data-wnid", leaves[0])
    expect(page.locator("#progress-previous")).to_be_disabled()

    page.locator("#progress-next").click()
    expect(shown).to_have_text(f"Synsets 101–{len(leaves)} of {len(leaves)} shown; find one by name or wnid above.")
    expect(rows).to_have_count(len(leaves) - 100)
    expect(rows.first).to_have_attribute("data-wnid", leaves[100])
    expect(page.locator("#progress-next")).to_be_disabled()
    page.locator("#progress-previous").click()
    expect(rows.first).to_have_attribute("data-wnid", leaves[0])
    # A new search starts from its first page.
    page.locator("#progress-next").click()
    expect(rows.first).to_have_attribute("data-wnid", leaves[100])
    page.locator("#progress-filter").fill("n0")
    expect(rows.first).to_have_attribute("data-wnid", leaves[0])


def test_a_long_campaign_name_without_spaces_wraps_instead_of_widening_the_pages(live_server, page, dog_taxonomy):
    from annotation.services.campaigns import campaign_create

    researcher = account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="Hounds" * 33, wnids=[WHIPPET])  # 198 characters
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, researcher)
    for path in ("/research/", f"/research/{campaign.id}/"):
        page.goto(f"{live_server.url}{path}")
        expect(page.get_by_text("Hounds" * 33).first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
