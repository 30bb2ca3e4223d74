from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from taxonomy import selectors, wordnet_source
from taxonomy.models import Synset, SynsetClosure, SynsetEdge

ILSVRC = Path(__file__).parent.parent / "data" / "ilsvrc2012_wnids.txt"
DOG = 2084071
PERSON = 7846


@pytest.fixture(scope="module")
def graph():
    return wordnet_source.load_noun_graph(settings.NLTK_DATA_DIR)


@pytest.fixture(scope="module")
def closure(graph):
    return wordnet_source.ancestor_distances(graph)


@pytest.mark.django_db
def test_full_import_matches_nltk_counts(graph):
    from nltk.corpus import wordnet

    nltk_synsets = list(wordnet.all_synsets("n"))
    nltk_links = sum(len(s.hypernyms()) + len(s.instance_hypernyms()) for s in nltk_synsets)

    assert Synset.objects.count() == len(nltk_synsets) == 82_115
    assert SynsetEdge.objects.count() == nltk_links == 84_427
    assert SynsetEdge.objects.filter(kind=SynsetEdge.Kind.INSTANCE).count() == sum(
        len(s.instance_hypernyms()) for s in nltk_synsets
    )


@pytest.mark.django_db
def test_imported_synset_carries_wordnet_fields():
    dog = Synset.objects.get(id=DOG)

    assert dog.wnid == "n02084071"
    assert dog.name == "dog.n.01"
    assert dog.lemmas == ["dog", "domestic dog", "Canis familiaris"]
    assert dog.gloss.startswith("a member of the genus Canis")
    assert dog.lexname == "noun.animal"
    assert dog.depth == 8  # shortest is-a path from entity.n.01, as NLTK's min_depth()
    assert Synset.objects.get(name="entity.n.01").depth == 0


@pytest.mark.django_db
def test_closure_answers_descendant_and_ancestor_questions():
    person = Synset.objects.get(id=PERSON)

    assert selectors.synset_descendants(synset=person).count() == 10_296
    assert len(selectors.synset_descendant_ids(synset_id=PERSON)) == 10_296
    assert SynsetClosure.objects.filter(ancestor_id=DOG).count() == 189
    assert SynsetClosure.objects.filter(descendant_id=DOG).count() == 14


@pytest.mark.django_db
def test_people_subtree_is_sensitive_and_nothing_else():
    assert Synset.objects.filter(sensitive=True).count() == 10_297  # person.n.01 and its descendants
    assert not Synset.objects.get(id=DOG).sensitive
    assert Synset.objects.get(name="whippet.n.01").sensitive is False
    assert Synset.objects.get(name="nurse.n.01").sensitive is True


@pytest.mark.django_db
def test_rerun_creates_nothing():
    out = StringIO()

    call_command("import_wordnet", "--all", "--no-progress", stdout=out, stderr=StringIO())

    assert "Created 0 synsets and 0 is-a links" in out.getvalue()
    assert "82115 synsets and 84427 is-a links" in out.getvalue()


@pytest.mark.django_db
def test_partial_imports_grow_into_the_full_hierarchy():
    # Emptied with three plain DELETEs: the ORM's cascading delete of 82,115 synsets collects their edges
    # and closure rows in Python first and took minutes.
    with connection.cursor() as cursor:
        for model in (SynsetClosure, SynsetEdge, Synset):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    assert SynsetEdge.objects.count() == SynsetClosure.objects.count() == 0
    quiet = {"stdout": StringIO(), "stderr": StringIO()}

    call_command("import_wordnet", "--root", "dog.n.01", "--no-progress", **quiet)
    assert Synset.objects.count() == 204  # dog.n.01, its 189 descendants and 14 ancestors
    assert SynsetClosure.objects.filter(ancestor_id=DOG).count() == 189

    call_command("import_wordnet", "--wnids", str(ILSVRC), "--no-progress", **quiet)
    ilsvrc = {int(w[1:]) for w in ILSVRC.read_text().split()}
    assert Synset.objects.filter(id__in=ilsvrc).count() == 1000

    call_command("import_wordnet", "--all", "--no-progress", **quiet)
    assert Synset.objects.count() == 82_115
    assert SynsetEdge.objects.count() == 84_427
    assert SynsetClosure.objects.count() == 743_241  # every (ancestor, descendant) pair of WordNet 3.0 nouns


def test_root_selection_is_the_subtree_with_its_ancestors(graph, closure):
    chosen = wordnet_source.select(graph, closure, roots=[DOG])

    assert len(chosen) == 204  # dog.n.01, 189 descendants, 14 ancestors
    assert graph.offset_of("entity.n.01") in chosen


def test_wnid_list_selection_adds_ancestors(graph, closure):
    offsets = [int(line[1:]) for line in ILSVRC.read_text().split()]

    chosen = wordnet_source.select(graph, closure, offsets=offsets)

    assert len(offsets) == 1000
    assert len(chosen) == 1860


def test_closure_distances_are_shortest_paths(graph, closure):
    dog_ancestors = closure[DOG]

    assert len(dog_ancestors) == 14
    assert dog_ancestors[graph.offset_of("canine.n.02")] == 1
    assert dog_ancestors[graph.offset_of("domestic_animal.n.01")] == 1  # dog has two parents
    assert dog_ancestors[graph.offset_of("entity.n.01")] == 8


@pytest.mark.django_db
def test_command_refuses_unclear_input(tmp_path):
    bad = tmp_path / "wnids.txt"
    bad.write_text("n02084071\ndog\n")

    with pytest.raises(CommandError, match="Say what to import"):
        call_command("import_wordnet")
    with pytest.raises(CommandError, match="not wnids"):
        call_command("import_wordnet", "--wnids", str(bad))
    with pytest.raises(CommandError, match=r"not a WordNet 3\.0 noun synset name"):
        call_command("import_wordnet", "--root", "dgo.n.01", "--no-progress")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_wordnet", "--wnids", str(tmp_path / "missing.txt"))
    assert Synset.objects.count() == 82_115
