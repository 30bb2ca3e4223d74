"""Reads of the taxonomy: search, hierarchy walks, label-set checks and query expansion."""

import re
from dataclasses import dataclass

from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When

from taxonomy.models import WNID_PATTERN, Synset, SynsetClosure, SynsetEdge, wnid_from_offset


class InvalidWnid(ValueError):
    pass


def offset_from_wnid(wnid: str) -> int:
    if not isinstance(wnid, str) or not re.match(WNID_PATTERN, wnid):
        raise InvalidWnid(f"{wnid!r} is not a wnid: expected 'n' followed by 8 digits, as in n02084071.")
    return int(wnid[1:])


def synset_get(*, wnid: str) -> Synset:
    """Raises InvalidWnid for a malformed wnid and Synset.DoesNotExist for an unknown one."""
    return Synset.objects.get(id=offset_from_wnid(wnid))


def search_terms(query: str) -> str:
    """The query with its whitespace collapsed and control characters dropped: a NUL matched every synset on
    SQLite (LIKE stops at it) and cannot be sent to PostgreSQL at all."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in query).split())


SYNSET_NAME = re.compile(r"[^\s.]+(?:\.[^\s.]+)*\.n\.\d{2}", re.IGNORECASE)  # lemma.n.NN (a lemma may hold dots)


def synset_search(*, query: str) -> QuerySet[Synset]:
    """Synsets matching a wnid, a lemma or words of the gloss. Synsets whose first lemma is the query come
    first, in WordNet's sense order (dog.n.01 before dog.n.03), then other exact lemmas, partial lemma
    matches, and gloss matches."""
    query = search_terms(query)
    if re.match(WNID_PATTERN, query):
        return Synset.objects.filter(id=int(query[1:]))
    if SYNSET_NAME.fullmatch(query):  # the name the pages show a synset by, e.g. dog.n.01
        return Synset.objects.filter(name__iexact=query)
    if not query:
        return Synset.objects.none()
    words = query.split(" ")
    lemma_match = Q(words__icontains=query)
    gloss_match = Q()
    for word in words:
        gloss_match &= Q(gloss__icontains=word)
    lowered = query.lower()
    first_lemma = Q(words__iexact=lowered) | Q(words__istartswith=f"{lowered},")
    other_lemma = Q(words__iendswith=f", {lowered}") | Q(words__icontains=f", {lowered},")
    return (
        Synset.objects.filter(lemma_match | gloss_match)
        .annotate(
            rank=Case(
                When(first_lemma, then=Value(0)),
                When(other_lemma, then=Value(1)),
                When(lemma_match, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "name")
    )


def synset_parents(*, synset: Synset) -> QuerySet[Synset]:
    return Synset.objects.filter(child_edges__child=synset).order_by("id")


def synset_children(*, synset: Synset) -> QuerySet[Synset]:
    return Synset.objects.filter(parent_edges__parent=synset).order_by("id")


def synset_descendants(*, synset: Synset, leaves_only: bool = False) -> QuerySet[Synset]:
    descendants = Synset.objects.filter(
        id__in=SynsetClosure.objects.filter(ancestor_id=synset.id).values("descendant_id")
    )
    if leaves_only:
        descendants = descendants.exclude(Exists(SynsetEdge.objects.filter(parent_id=OuterRef("id"))))
    return descendants.order_by("id")


def synset_descendant_ids(*, synset_id: int) -> list[int]:
    """Just the ids, for bulk work: one index-only scan of the closure."""
    return list(SynsetClosure.objects.filter(ancestor_id=synset_id).order_by().values_list("descendant_id", flat=True))


def synset_ancestors(*, synset: Synset) -> QuerySet[Synset]:
    return Synset.objects.filter(
        id__in=SynsetClosure.objects.filter(descendant_id=synset.id).values("ancestor_id")
    ).order_by("depth", "id")


def synset_paths_to_root(*, synset: Synset) -> list[list[Synset]]:
    """Every is-a path from the root down to the synset (WordNet nouns are a DAG, so there can be several).
    Two queries: the ancestors, and the links among them."""
    ancestors = {s.id: s for s in synset_ancestors(synset=synset)}
    ancestors[synset.id] = synset
    parents: dict[int, list[int]] = {}
    for parent_id, child_id in SynsetEdge.objects.filter(child_id__in=ancestors).values_list("parent_id", "child_id"):
        parents.setdefault(child_id, []).append(parent_id)

    def walk(node: int) -> list[list[int]]:
        ups = sorted(parents.get(node, []))
        if not ups:
            return [[node]]
        return [[*path, node] for parent in ups for path in walk(parent)]

    return [[ancestors[i] for i in path] for path in walk(synset.id)]


@dataclass(frozen=True)
class LabelSetReport:
    synsets: list[Synset]
    unknown: list[str]
    overlaps: list[tuple[str, str]]  # (ancestor wnid, descendant wnid)
    sensitive: list[str]

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.overlaps


def label_set_check(*, wnids: list[str]) -> LabelSetReport:
    """Does a label set partition cleanly? Reports members that are ancestors of other members (ILSVRC's
    1,000 classes have none), wnids not in the database, and sensitive members that need an opt-in.
    Raises InvalidWnid for a malformed wnid."""
    offsets = sorted({offset_from_wnid(w) for w in wnids})
    synsets = list(Synset.objects.filter(id__in=offsets).order_by("id"))
    found = {s.id for s in synsets}
    overlaps = (
        SynsetClosure.objects.filter(ancestor_id__in=found, descendant_id__in=found)
        .order_by("ancestor_id", "descendant_id")
        .values_list("ancestor_id", "descendant_id")
    )
    return LabelSetReport(
        synsets=synsets,
        unknown=[wnid_from_offset(o) for o in offsets if o not in found],
        overlaps=[(wnid_from_offset(a), wnid_from_offset(d)) for a, d in overlaps],
        sensitive=[s.wnid for s in synsets if s.sensitive],
    )


def label_set_names(*, report: LabelSetReport, first: list[str]) -> dict[str, str]:
    """wnid → words for the members among ``first`` (as sent; any case) and those the report's first 10 overlaps
    and first 20 sensitive members name (a whole subtree overlaps nearly everywhere: not a name per member)."""
    wanted = {w.lower() for w in first} | {w for pair in report.overlaps[:10] for w in pair}
    wanted |= set(report.sensitive[:20])
    return {s.wnid: s.words for s in report.synsets if s.wnid in wanted}


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def synset_query_terms(*, synset: Synset) -> list[str]:
    """Search-engine queries for collecting candidates, as ImageNet built them (Deng et al. 2009): every
    lemma, and every lemma combined with a lemma of an ancestor that the gloss mentions
    (whippet -> "whippet", "whippet dog", "whippet greyhound")."""
    gloss_words = {w.lower() for w in _WORD.findall(synset.gloss)}
    gloss_text = f" {' '.join(_WORD.findall(synset.gloss)).lower()} "
    context: list[str] = []
    nearest_first = (
        SynsetClosure.objects.filter(descendant_id=synset.id)
        .select_related("ancestor")
        .order_by("distance", "ancestor_id")
    )
    for link in nearest_first:
        for lemma in link.ancestor.lemmas:
            lowered = lemma.lower()
            mentioned = lowered in gloss_words if " " not in lowered else f" {lowered} " in gloss_text
            if mentioned and lowered not in context:
                context.append(lowered)
    terms: list[str] = []
    for lemma in synset.lemmas:
        terms.append(lemma)
        terms.extend(f"{lemma} {word}" for word in context if word != lemma.lower())
    return terms
