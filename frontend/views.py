"""Page views: thin callers of the apps' selectors."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django_ratelimit.decorators import ratelimit

from annotation.models import Campaign
from annotation.services.quiz import quiz_due
from taxonomy import selectors as taxonomy
from taxonomy.models import Synset


def home(request):
    from workers.roles import Role
    from workers.services import user_has_role

    runs_campaigns = user_has_role(request.user, Role.RESEARCHER) or user_has_role(request.user, Role.ADMIN)
    return render(request, "frontend/home.html", {"runs_campaigns": runs_campaigns})


def taxonomy_search(request):
    # The terms the search uses, shown back as such: a NUL or other control character is not echoed (QA).
    terms = taxonomy.search_terms(request.GET.get("q", ""))
    query = terms[:200]
    page = None
    if query:
        page = Paginator(taxonomy.synset_search(query=query), 50).get_page(request.GET.get("page"))
    return render(
        request, "frontend/taxonomy_search.html", {"query": query, "page": page, "shortened": len(terms) > len(query)}
    )


def synset_detail(request, wnid: str):
    try:
        synset = taxonomy.synset_get(wnid=wnid)
    except taxonomy.InvalidWnid as error:
        return render(request, "frontend/error.html", {"message": str(error)}, status=400)
    except Synset.DoesNotExist:
        raise Http404(f"No synset {wnid} in this database.") from None
    context = {
        "synset": synset,
        "parents": taxonomy.synset_parents(synset=synset),
        "children": taxonomy.synset_children(synset=synset),
        "paths": taxonomy.synset_paths_to_root(synset=synset),
        "descendant_count": taxonomy.synset_descendants(synset=synset).count(),
        "query_terms": taxonomy.synset_query_terms(synset=synset),
    }
    return render(request, "frontend/synset_detail.html", context)


# ---- Crowd workers -------------------------------------------------------------------------------------


def rate_limited(request, exception):
    """django-ratelimit's answer to a flood of sign-in or sign-up attempts."""
    message = "Too many attempts from your address; wait a minute and try again."
    return render(request, "frontend/error.html", {"message": message}, status=429)


@ratelimit(key="ip", rate=settings.RATELIMIT_SIGNUP, method="POST")
def signup(request):
    """Browser sign-up for crowd workers (researchers and admins are created by an admin)."""
    from django.contrib.auth import login
    from django.contrib.auth.forms import UserCreationForm
    from django.core.exceptions import ValidationError
    from django.shortcuts import redirect

    from workers.roles import Role
    from workers.services import account_create

    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = account_create(
                username=form.cleaned_data["username"], password=form.cleaned_data["password1"], role=Role.WORKER
            )
        except ValidationError as error:  # a name kept for marketplace workers
            form.add_error("username", error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("work-home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def work_home(request):
    from annotation.selectors import worker_campaigns, worker_stats

    return render(
        request,
        "frontend/work_home.html",
        {"stats": worker_stats(worker=request.user), "campaigns": worker_campaigns(worker=request.user)},
    )


@login_required
def label(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    refused = _unless_running(request, campaign)
    if refused is not None:
        return refused
    if quiz_due(worker=request.user, campaign=campaign):
        return redirect("quiz", campaign_id=campaign.id)  # not a page whose first request is refused
    return render(request, "frontend/label.html", {"campaign": campaign})


@login_required
def quiz(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    return _unless_running(request, campaign) or render(request, "frontend/quiz.html", {"campaign": campaign})


def _unless_running(request, campaign: Campaign):
    """The work pages of a campaign that is not running: a sentence (409) instead of a page whose every
    request would be refused."""
    if campaign.state == Campaign.State.RUNNING:
        return None
    message = f"Campaign “{campaign.name}” is {campaign.state}, not running: there is no work here at the moment."
    return render(request, "frontend/error.html", {"message": message}, status=409)
