from pathlib import Path

import pytest
from rest_framework.test import APIClient

from taxonomy.models import Synset
from taxonomy.selectors import synset_descendants

ILSVRC = Path(__file__).parent.parent / "data" / "ilsvrc2012_wnids.txt"
pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_search_by_lemma_ranks_exact_lemma_first(api):
    response = api.get("/api/v1/synsets/", {"q": "whippet"})

    assert response.status_code == 200
    assert response.data["count"] == 1
    first = response.data["results"][0]
    assert first["wnid"] == "n02091134"
    assert first["name"] == "whippet.n.01"
    assert first["lemmas"] == ["whippet"]


def test_search_by_wnid_and_by_gloss_words(api):
    by_wnid = api.get("/api/v1/synsets/", {"q": "n02084071"})
    by_gloss = api.get("/api/v1/synsets/", {"q": "slender greyhound"})

    assert [s["name"] for s in by_wnid.data["results"]] == ["dog.n.01"]
    assert "whippet.n.01" in [s["name"] for s in by_gloss.data["results"]]


def test_search_is_paginated(api):
    response = api.get("/api/v1/synsets/", {"q": "dog"})

    assert response.data["count"] > 50
    assert len(response.data["results"]) == 50
    assert response.data["results"][0]["name"] == "dog.n.01"
    assert response.data["next"] is not None


@pytest.mark.parametrize("query", [None, " ", "\x00", "\x00\x01 \t"])
def test_search_without_term_is_400_with_a_sentence(api, query):
    # a NUL once matched every synset on SQLite (LIKE stops at it); PostgreSQL cannot take one at all
    response = api.get("/api/v1/synsets/", {} if query is None else {"q": query})

    assert response.status_code == 400
    assert response.json()["detail"] == "q: Give a search term: a lemma, gloss words or a wnid."


def test_a_control_character_inside_a_term_is_dropped(api):
    response = api.get("/api/v1/synsets/", {"q": "dog\x00"})

    assert response.status_code == 200 and response.data["results"][0]["name"] == "dog.n.01"


def test_detail_has_parents_children_and_paths_to_root(api):
    response = api.get("/api/v1/synsets/n02084071/")

    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "dog.n.01"
    assert sorted(p["name"] for p in data["parents"]) == ["canine.n.02", "domestic_animal.n.01"]
    assert "puppy.n.01" in [c["name"] for c in data["children"]]
    assert len(data["paths_to_root"]) == 2
    assert all(path[0] == "n00001740" and path[-1] == "n02084071" for path in data["paths_to_root"])
    assert data["descendant_count"] == 189


def test_query_terms_combine_lemmas_with_ancestor_words_in_the_gloss(api):
    data = api.get("/api/v1/synsets/n02091134/").json()  # whippet: "a small slender dog of greyhound type…"

    assert data["query_terms"] == ["whippet", "whippet greyhound", "whippet dog"]


def test_descendants_with_counts_and_leaves_only(api):
    everything = api.get("/api/v1/synsets/n00007846/descendants/")
    leaves = api.get("/api/v1/synsets/n00007846/descendants/", {"leaves": "true"})

    assert everything.data["count"] == 10_296
    assert 0 < leaves.data["count"] < 10_296
    leaf = leaves.data["results"][0]["wnid"]
    assert api.get(f"/api/v1/synsets/{leaf}/").json()["children"] == []


def test_unknown_wnid_is_404_and_malformed_is_400(api):
    unknown = api.get("/api/v1/synsets/n99999999/")
    malformed = api.get("/api/v1/synsets/dog/")
    malformed_descendants = api.get("/api/v1/synsets/n0208407/descendants/")

    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "No synset n99999999 in this database.", "code": "not_found"}
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_wnid"
    assert "expected 'n' followed by 8 digits" in malformed.json()["detail"]
    assert malformed_descendants.status_code == 400


def test_ilsvrc_classes_do_not_overlap(api):
    wnids = ILSVRC.read_text().split()

    response = api.post("/api/v1/label-sets/check/", {"wnids": wnids}, format="json")

    assert response.status_code == 200
    # ILSVRC-2012 keeps three people classes: ballplayer, groom, scuba diver.
    assert response.json() == {
        "ok": True,
        "count": 1000,
        "unknown": [],
        "overlaps": [],
        "sensitive": ["n09835506", "n10148035", "n10565667"],
        "names": response.json()["names"],
    }
    # Names for the first 100 members as sent (and the sensitive ones), not for all 1,000.
    names = response.json()["names"]
    assert set(names) == set(wnids[:100]) | {"n09835506", "n10148035", "n10565667"}
    assert names["n10148035"] == "groom, bridegroom"


def test_label_set_check_lists_conflicting_pairs_unknown_and_sensitive(api):
    wnids = ["n02084071", "n02091134", "n02085620", "n00007846", "n99999999"]  # dog, whippet, Chihuahua, person

    data = api.post("/api/v1/label-sets/check/", {"wnids": wnids}, format="json").json()

    assert data["ok"] is False
    assert data["overlaps"] == [["n02084071", "n02085620"], ["n02084071", "n02091134"]]
    assert data["unknown"] == ["n99999999"]
    assert data["sensitive"] == ["n00007846"]
    assert data["names"] == {
        "n02084071": "dog, domestic dog, Canis familiaris",
        "n02091134": "whippet",
        "n02085620": "Chihuahua",
        "n00007846": "person, individual, someone, somebody, mortal, soul",
    }


def test_the_leaves_under_animal_include_humans_and_are_flagged(api):
    # QA: every leaf under animal.n.01 checked as not sensitive, though homo.n.02 (man, human being) is an
    # animal in WordNet, and world.n.08 (humans, mankind) one of its leaves.
    animal = Synset.objects.get(name="animal.n.01")
    wnids = [s.wnid for s in synset_descendants(synset=animal, leaves_only=True)]

    data = api.post("/api/v1/label-sets/check/", {"wnids": wnids}, format="json").json()

    humans = ["world.n.08", "homo_sapiens_sapiens.n.01", "cro-magnon.n.01", "neandertal_man.n.01",
              "java_man.n.01", "peking_man.n.01", "rhodesian_man.n.01", "homo_habilis.n.01", "boskop_man.n.01",
              "solo_man.n.01"]  # fmt: skip
    expected = sorted(Synset.objects.get(name=name).wnid for name in humans)
    assert data["sensitive"] == expected and data["count"] == len(wnids)


@pytest.mark.parametrize(
    "payload",
    [{}, {"wnids": []}, {"wnids": "n02084071"}, {"wnids": ["dog"]}, {"wnids": [123]}],
)
def test_label_set_check_rejects_bad_input_with_a_sentence(api, payload):
    response = api.post("/api/v1/label-sets/check/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("wnids")


def test_openapi_schema_and_docs_page(api):
    schema = api.get("/api/v1/schema/", {"format": "json"})
    docs = api.get("/api/v1/docs/")

    assert schema.status_code == 200
    assert "/api/v1/synsets/{wnid}/descendants/" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()
