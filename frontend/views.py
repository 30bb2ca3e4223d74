"""Page views: thin callers of the apps' selectors."""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from taxonomy import selectors as taxonomy
from taxonomy.models import Synset


def home(request):
    return render(request, "frontend/home.html")


def taxonomy_search(request):
    query = request.GET.get("q", "").strip()[:200]
    page = None
    if query:
        page = Paginator(taxonomy.synset_search(query=query), 50).get_page(request.GET.get("page"))
    return render(request, "frontend/taxonomy_search.html", {"query": query, "page": page})


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
