import pytest

pytestmark = pytest.mark.django_db


def test_search_page_lists_matches(client):
    response = client.get("/taxonomy/", {"q": "whippet"})

    assert response.status_code == 200
    assert b"n02091134" in response.content
    assert b"1 synset matches" in response.content


def test_a_search_that_finds_nothing_says_so(client):
    body = client.get("/taxonomy/", {"q": "zzzzqqq"}).content.decode()
    assert "0 synsets match “zzzzqqq”. Try fewer or other words" in body

    long = client.get("/taxonomy/", {"q": "whippet " + "x" * 300}).content.decode()
    assert "Only the first 200 characters of the search were used." in long


def test_synset_page_shows_gloss_path_and_children(client):
    response = client.get("/taxonomy/n02084071/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "a member of the genus Canis" in body
    assert 'href="/taxonomy/n00001740/"' in body  # entity, on the path to the root
    assert 'href="/taxonomy/n01322604/"' in body  # puppy, a child
    assert "189 descendants in all" in body


def test_synset_page_errors(client):
    assert client.get("/taxonomy/n99999999/").status_code == 404
    malformed = client.get("/taxonomy/notawnid/")
    assert malformed.status_code == 400
    assert b"expected &#x27;n&#x27; followed by 8 digits" in malformed.content


def test_search_page_echoes_the_terms_it_searched_not_control_characters(client):
    response = client.get("/taxonomy/", {"q": "whip\x00pet\x07"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "\x00" not in body and "\x07" not in body
    assert 'value="whip pet"' in body
