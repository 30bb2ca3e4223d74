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
def test_people_subtree_and_the_human_synsets_outside_it_are_sensitive_and_nothing_else():
    # person.n.01 and its 10,296 descendants, and 246 synsets of human beings WordNet files elsewhere
    # (wordnet_source.SENSITIVE_ROOTS and their subtrees).
    assert Synset.objects.filter(sensitive=True).count() == 10_297 + 246
    assert not Synset.objects.get(id=DOG).sensitive
    assert Synset.objects.get(name="whippet.n.01").sensitive is False
    assert Synset.objects.get(name="nurse.n.01").sensitive is True
    human = ["homo.n.02", "world.n.08", "homo_sapiens.n.01", "cro-magnon.n.01", "people.n.01",
             "peoples.n.01", "folk.n.01", "populace.n.01", "human_body.n.01", "person.n.02", "race.n.03",
             "ethnic_group.n.01"]  # fmt: skip
    assert dict(Synset.objects.filter(name__in=human).values_list("name", "sensitive")) == dict.fromkeys(human, True)
    # Not human beings: the fossil apes beside homo.n.02 under hominid.n.01, and groups of things or of doers.
    other = ["hominid.n.01", "australopithecus_afarensis.n.01", "primate.n.02", "crowd.n.01", "social_group.n.01"]
    assert dict(Synset.objects.filter(name__in=other).values_list("name", "sensitive")) == dict.fromkeys(other, False)


@pytest.mark.django_db
def test_each_sensitive_root_is_the_synset_its_reason_names():
    names = dict(Synset.objects.filter(id__in=wordnet_source.SENSITIVE_ROOTS).values_list("id", "name"))
    for offset, reason in wordnet_source.SENSITIVE_ROOTS.items():
        assert reason.startswith(names[offset] + ":") or reason.startswith(names[offset] + " ("), (offset, reason)


@pytest.mark.django_db
def test_the_migration_flags_a_database_imported_under_the_old_rule():
    from importlib import import_module

    from django.apps import apps

    Synset.objects.exclude(id__in=SynsetClosure.objects.filter(ancestor_id=PERSON).values("descendant_id")).exclude(
        id=PERSON
    ).update(sensitive=False)
    assert Synset.objects.filter(sensitive=True).count() == 10_297

    import_module("taxonomy.migrations.0002_sensitive_human_synsets").flag(apps, None)

    assert Synset.objects.filter(sensitive=True).count() == 10_297 + 246
    assert Synset.objects.get(name="world.n.08").sensitive is True


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
