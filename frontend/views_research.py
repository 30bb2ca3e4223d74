"""Pages for researchers (campaigns, dashboard, synset inspection) and admins (workers, payments). The pages
are shells: their data comes from the JSON API (annotation/api/campaigns.py, annotation/api/dashboard.py),
except the admin's worker page, which posts forms to the same services. Crowd workers get 403."""

import csv
from functools import wraps

from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from annotation.errors import AnnotationError
from annotation.models import CampaignSynset
from annotation.selectors import dashboard as selectors
from annotation.services import manage
from export.formats import DEFAULT_FORMATS, FORMATS
from workers.roles import Role
from workers.services import user_has_role


def _role_required(*roles: Role):
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not any(user_has_role(request.user, role) for role in roles):
                message = "This page is for researchers and admins." if Role.RESEARCHER in roles else "Admins only."
                return render(request, "frontend/error.html", {"message": message}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


EXPORT_FORMAT_TITLES = {
    "imagenet": "ImageNet folders, with PASCAL VOC boxes",
    "coco": "COCO JSON",
    "voc": "PASCAL VOC (JPEGImages, Annotations, ImageSets)",
    "webdataset": "WebDataset shards",
    "votes": "Votes and consensus (CSV, JSON)",
}
researcher_required = _role_required(Role.RESEARCHER, Role.ADMIN)
admin_required = _role_required(Role.ADMIN)


def _campaign(request, campaign_id: int):
    campaign = selectors.campaigns_visible(user=request.user).filter(id=campaign_id).first()
    if campaign is None:
        raise Http404(f"You have no campaign {campaign_id}.")
    return campaign


@researcher_required
def campaign_list(request):
    return render(request, "research/campaigns.html", {"campaigns": selectors.campaign_list(user=request.user)})


@researcher_required
def campaign_new(request):
    return render(request, "research/campaign_new.html", {"root": request.GET.get("root", "")[:9]})


# Up to this many synsets the dashboard lists them (a select for image import, chips); above, the researcher
# finds one by name or wnid (the import field suggests from the server's search, progress lists 100 at a time).
SYNSET_LIST_LIMIT = 200


@researcher_required
def campaign_dashboard(request, campaign_id: int):
    campaign = _campaign(request, campaign_id)
    members = CampaignSynset.objects.filter(campaign=campaign)
    count = members.count()
    synsets = members.select_related("synset").order_by("synset_id") if count <= SYNSET_LIST_LIMIT else []
    formats = [(name, EXPORT_FORMAT_TITLES.get(name, name), name in DEFAULT_FORMATS) for name in FORMATS]
    return render(
        request,
        "research/dashboard.html",
        {"campaign": campaign, "synsets": synsets, "synset_count": count, "export_formats": formats},
    )


@researcher_required
def synset_inspect(request, campaign_id: int, wnid: str):
    campaign = _campaign(request, campaign_id)
    try:
        campaign_synset = selectors.campaign_synset_get(campaign=campaign, wnid=wnid)
    except CampaignSynset.DoesNotExist:
        raise Http404(f"Campaign {campaign.id} has no synset {wnid}.") from None
    return render(request, "research/synset.html", {"campaign": campaign, "cs": campaign_synset})


# ---- Admin: workers and payments ------------------------------------------------------------------------


def _posted_worker(request) -> User:
    """The account a workers-page row form names (ValueError for a non-number: the page's sentence)."""
    worker = User.objects.filter(id=request.POST.get("worker")).first()
    if worker is None:
        raise AnnotationError("No such worker.")
    return worker


@admin_required
def workers_manage(request):
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action in {"block", "unblock"}:
                worker = _posted_worker(request)
                service = manage.worker_block if action == "block" else manage.worker_unblock
                service(worker=worker, reason=request.POST.get("reason", ""), by=request.user)
                messages.success(request, f"{worker.username}: {action}ed.")
            elif action == "adjust":
                worker = _posted_worker(request)
                entry = manage.ledger_adjust(
                    worker=worker,
                    kind=request.POST.get("kind", ""),
                    amount=request.POST.get("amount", ""),
                    note=request.POST.get("note", ""),
                    by=request.user,
                )
                messages.success(request, _adjustment_sentence(worker, entry))
            elif action == "approve":
                up_to = int(request.POST.get("up_to_entry") or 0)
                approval = manage.payments_approve(up_to_entry=up_to)
                messages.success(request, f"Approved {approval.entries} ledger entries, {approval.amount} in total.")
        except (AnnotationError, ValueError) as error:
            # The page again with the refused row's form open and what was typed in it, to be put right.
            messages.error(request, getattr(error, "message", str(error)))
            return _workers_page(request, request.POST.get("q", "").strip()[:100], refused=request.POST, status=400)
        return redirect(f"{reverse('research-workers')}?q={request.POST.get('q', '')}")
    return _workers_page(request, request.GET.get("q", "").strip()[:100])


def _adjustment_sentence(worker: User, entry) -> str:
    if entry.kind == "correction":
        if entry.amount < 0:
            return f"{worker.username}: correction of {entry.amount} taken back from their unpaid earnings."
        return f"{worker.username}: correction of +{entry.amount} added to their unpaid earnings."
    return f"{worker.username}: {entry.kind} of {entry.amount} added, unpaid."


def _posted_id(posted) -> int | None:
    try:
        return int(posted.get("worker", ""))
    except ValueError:
        return None


def _workers_page(request, query: str, refused=None, status: int = 200):
    return render(
        request,
        "research/workers.html",
        {
            "workers": selectors.workers_overview(query=query),
            "query": query,
            "unpaid": selectors.payments_unpaid_summary(),
            "refused": refused or {},
            # The worker whose form was refused, by which form: that row shows what was typed, to be put right.
            "again_adjust": _posted_id(refused) if refused and refused.get("action") == "adjust" else None,
            "again_block": _posted_id(refused) if refused and refused.get("action") in {"block", "unblock"} else None,
        },
        status=status,
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin_required
def payouts_csv(request):
    """Unpaid earnings per worker, streamed (one row per worker with unpaid ledger entries)."""
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(
            ["worker_id", "username", "external_id", "unpaid_entries", "unpaid_amount", "up_to_entry"]
        )
        for worker_id, username, external_id, entries, amount, last_entry in manage.payouts_unpaid():
            yield writer.writerow([worker_id, username, external_id or "", entries, f"{amount:.2f}", last_entry])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="synsight-payouts.csv"'
    return response
