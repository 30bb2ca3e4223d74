"""An admin puts a worker's earnings right: a bonus, or a correction either way, with a note the worker reads beside
their earnings. Entries are never edited; a negative correction takes back at most what is unpaid."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from annotation.errors import AnnotationError, Conflict
from annotation.services.manage import ledger_adjust, payments_approve
from tests.concurrency import another_connection_waits, while_held_open
from workers.models import LedgerEntry


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ledger(worker) -> list[tuple]:
    return list(LedgerEntry.objects.filter(worker=worker).order_by("id").values_list("kind", "amount", "note", "paid"))


def test_an_admin_adds_a_bonus_on_the_workers_page_and_the_worker_reads_it(seeded, admin):
    before = _ledger(seeded.worker)
    client = _client(admin)

    response = client.post(
        "/manage/workers/",
        {"action": "adjust", "worker": seeded.worker.id, "kind": "bonus", "amount": "2.5", "note": " careful  boxes "},
        follow=True,
    )

    assert "worker: bonus of 2.50 added, unpaid." in response.content.decode()
    assert _ledger(seeded.worker) == [*before, ("bonus", Decimal("2.50"), "careful boxes", False)]
    assert LedgerEntry.objects.order_by("-id").first().created_by == admin
    assert 'data-worker="worker"' in response.content.decode() and "2.60" in response.content.decode()  # unpaid

    me = _client(seeded.worker).get("/api/v1/me/").json()
    assert me["earnings"] == "2.60"
    assert [(a["kind"], a["amount"], a["note"]) for a in me["adjustments"]] == [("bonus", "2.50", "careful boxes")]
    assert me["unpaid"] == "2.60"
    home = _client(seeded.worker).get("/work/").content.decode()
    assert "careful boxes" in home and "2.50" in home
    assert '<span data-stat="unpaid">2.60</span> not paid yet' in home
    payments_approve(worker_ids=[seeded.worker.id])  # paid: still earned, no longer unpaid
    assert _client(seeded.worker).get("/api/v1/me/").json()["unpaid"] == "0.00"
    assert '<span data-stat="unpaid">0.00</span> not paid yet' in _client(seeded.worker).get("/work/").content.decode()


def test_a_negative_correction_takes_back_unpaid_earnings_and_the_payouts_follow(seeded, admin):
    ledger_adjust(worker=seeded.worker, kind="bonus", amount="3.00", note="paid twice for one HIT", by=admin)

    ledger_adjust(worker=seeded.worker, kind="correction", amount="-3.00", note="the bonus was a mistake", by=admin)

    csv = _client(admin).get("/manage/payouts.csv")
    row = [line for line in b"".join(csv.streaming_content).decode().splitlines() if ",worker," in line]
    assert row and row[0].split(",")[4] == "0.10"  # the HIT's 0.10 is what is left to pay
    approval = payments_approve(worker_ids=[seeded.worker.id])
    assert (approval.entries, approval.amount) == (3, Decimal("0.10"))


@pytest.mark.parametrize(
    ("kind", "amount", "note", "sentence"),
    [
        ("bonus", "abc", "n", "The amount must be a number of the currency, e.g. 2.50; got 'abc'."),
        ("bonus", "1.005", "n", "The amount must be a number to the cent, e.g. 2.50; got '1.005'."),
        ("bonus", "NaN", "n", "The amount must be a number to the cent, e.g. 2.50; got 'NaN'."),
        ("bonus", "Infinity", "n", "The amount must be a number to the cent, e.g. 2.50; got 'Infinity'."),
        ("bonus", "0", "n", "The amount must not be zero."),
        ("bonus", "10000.01", "n", "The amount must be at most 10000.00 either way; got '10000.01'."),
        ("bonus", "1e400", "n", "The amount must be at most 10000.00 either way; got '1e400'."),
        ("bonus", "-1", "n", "A bonus is a positive amount; take earnings back with a correction."),
        ("bonus", "1", "  ", "Give a note: the worker reads it beside their earnings."),
        ("bonus", "1", "x" * 201, "The note is 201 characters long; at most 200."),
        ("hit", "1", "n", "An adjustment is a bonus or a correction; got 'hit'."),
        ("correction", "-0.11", "n", "A correction can take back at most worker's unpaid earnings, 0.10: paid"),
    ],
)
def test_a_bad_adjustment_is_refused_with_a_sentence_and_records_nothing(seeded, admin, kind, amount, note, sentence):
    before = _ledger(seeded.worker)

    response = _client(admin).post(
        "/manage/workers/",
        {"action": "adjust", "worker": seeded.worker.id, "kind": kind, "amount": amount, "note": note},
        follow=True,
    )

    assert response.status_code == 400
    page = response.content.decode().replace("&#x27;", "'")
    assert sentence in page
    assert _ledger(seeded.worker) == before
    # The refused row's form is open again with what was typed, to be put right rather than typed again.
    row = page.split('data-worker="worker"', 1)[1].split("</tr>", 1)[0]
    assert '<details class="adjust" open>' in row
    assert f'value="{amount}"' in row and (not note.strip() or f'value="{note}"' in row)
    assert ('<option value="correction" selected>' in row) == (kind == "correction")
    assert '<details class="adjust" open>' not in page.split('data-worker="other_worker"', 1)[1].split("</tr>", 1)[0]


def test_a_correction_says_whether_it_adds_or_takes_back(seeded, admin):
    client = _client(admin)
    form = {"action": "adjust", "worker": seeded.worker.id, "kind": "correction", "note": "a HIT counted twice"}

    added = client.post("/manage/workers/", {**form, "amount": "0.40"}, follow=True).content.decode()
    taken = client.post("/manage/workers/", {**form, "amount": "-0.30"}, follow=True).content.decode()

    assert "worker: correction of +0.40 added to their unpaid earnings." in added
    assert "worker: correction of -0.30 taken back from their unpaid earnings." in taken
    assert [amount for kind, amount, *_ in _ledger(seeded.worker) if kind == "correction"] == [
        Decimal("0.40"),
        Decimal("-0.30"),
    ]


def test_paid_earnings_are_not_taken_back(seeded, admin):
    payments_approve()
    with pytest.raises(Conflict, match=r"at most worker's unpaid earnings, 0\.00: paid entries stay paid"):
        ledger_adjust(worker=seeded.worker, kind="correction", amount="-0.10", note="a wrong HIT", by=admin)


def test_only_crowd_workers_have_earnings_to_adjust(seeded, admin, researcher):
    with pytest.raises(AnnotationError, match="researcher is an admin or researcher, not a crowd worker"):
        ledger_adjust(worker=researcher, kind="bonus", amount="1", note="thanks", by=admin)
    form = {"action": "adjust", "worker": "x", "kind": "bonus", "amount": "1", "note": "n"}
    response = _client(admin).post("/manage/workers/", form, follow=True)
    assert response.status_code == 400 and not LedgerEntry.objects.filter(kind="bonus").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once: PostgreSQL (SQLite runs one)")
def test_a_correction_while_the_payments_are_approved_cannot_take_back_what_was_just_paid(worker, admin):
    """The approval holds the worker's unpaid entries; the correction waits for it, then finds nothing unpaid (it
    read 5.00 unpaid before the lock and took it back from entries already paid)."""
    ledger_adjust(worker=worker, kind="bonus", amount="5.00", note="a week of good work", by=admin)

    approval, correction = while_held_open(
        lambda: payments_approve(),
        lambda: ledger_adjust(worker=worker, kind="correction", amount="-5.00", note="too much", by=admin),
        until=another_connection_waits,
    )

    assert approval.amount == Decimal("5.00"), approval
    assert isinstance(correction, Conflict), correction
    assert _ledger(worker) == [("bonus", Decimal("5.00"), "a week of good work", True)]
