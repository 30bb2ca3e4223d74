"""Admins manage workers: block/unblock everywhere with a reason, approve payments, download payouts."""

from decimal import Decimal

from django.test import Client

from annotation.models import WorkerAction
from workers.models import LedgerEntry, Qualification, WorkerProfile


def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_payouts_csv_lists_unpaid_totals_per_worker(seeded, admin):
    LedgerEntry.objects.create(worker=seeded.worker, kind="bonus", amount=Decimal("1.50"), note="bonus")
    LedgerEntry.objects.create(worker=seeded.other_worker, kind="bonus", amount=Decimal("9.00"), paid=True)
    response = admin_client(admin).get("/manage/payouts.csv")
    assert response["Content-Type"].startswith("text/csv") and response.streaming
    last = {w: LedgerEntry.objects.filter(worker=w, paid=False).order_by("-id").first().id
            for w in (seeded.worker, seeded.other_worker)}  # fmt: skip
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "worker_id,username,external_id,unpaid_entries,unpaid_amount,up_to_entry",
        f"{seeded.worker.id},worker,,2,1.60,{last[seeded.worker]}",
        f"{seeded.other_worker.id},other_worker,,1,0.10,{last[seeded.other_worker]}",
    ]


def test_approving_payments_marks_listed_entries_paid(seeded, admin):
    last = LedgerEntry.objects.order_by("-id").first().id
    late = LedgerEntry.objects.create(worker=seeded.worker, kind="bonus", amount=Decimal("2.00"))
    response = admin_client(admin).post("/manage/workers/", {"action": "approve", "up_to_entry": last})
    assert response.status_code == 302
    assert list(LedgerEntry.objects.filter(paid=False).values_list("id", flat=True)) == [late.id]


def test_the_approve_button_says_what_it_will_pay_and_posts_the_entries_listed(seeded, admin):
    LedgerEntry.objects.create(worker=seeded.worker, kind="bonus", amount=Decimal("1.50"), note="bonus")
    LedgerEntry.objects.create(worker=seeded.other_worker, kind="bonus", amount=Decimal("9.00"), paid=True)
    last = LedgerEntry.objects.filter(paid=False).order_by("-id").first().id
    page = admin_client(admin).get("/manage/workers/").content.decode()
    assert "Approve all unpaid: 1.70 to 2 workers</summary>" in page  # 0.10 + 1.50 and 0.10; the paid 9.00 not
    assert f'name="up_to_entry" value="{last}"' in page and "Mark 1.70 paid</button>" in page

    admin_client(admin).post("/manage/workers/", {"action": "approve", "up_to_entry": last})
    page = admin_client(admin).get("/manage/workers/").content.decode()
    assert "disabled>Nothing unpaid</button>" in page


def test_block_everywhere_with_reason_and_unblock(seeded, admin):
    client = admin_client(admin)
    client.post("/manage/workers/", {"action": "block", "worker": seeded.other_worker.id, "reason": "copy-paste bot"})
    profile = WorkerProfile.objects.get(user=seeded.other_worker)
    assert (profile.blocked, profile.blocked_reason) == (True, "copy-paste bot")
    assert Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status == "blocked"
    page = client.get("/manage/workers/").content.decode()
    assert "copy-paste bot" in page
    client.post(
        "/manage/workers/", {"action": "unblock", "worker": seeded.other_worker.id, "reason": "human after all"}
    )
    profile.refresh_from_db()
    assert not profile.blocked
    assert Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status == "qualified"
    assert list(WorkerAction.objects.order_by("id").values_list("action", "campaign", "reason")) == [
        ("block", None, "copy-paste bot"), ("unblock", None, "human after all"),
    ]  # fmt: skip


def test_block_without_reason_is_refused(seeded, admin):
    admin_client(admin).post("/manage/workers/", {"action": "block", "worker": seeded.other_worker.id, "reason": ""})
    assert not WorkerProfile.objects.get(user=seeded.other_worker).blocked
    assert not WorkerAction.objects.exists()
