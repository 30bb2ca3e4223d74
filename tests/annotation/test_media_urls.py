"""media_urls is default_storage.url without urljoin for plain names: the same URL for every name, plain or not."""

import pytest
from django.core.files.storage import default_storage

from annotation.selectors.images import media_urls

NAMES = [
    "thumbs/ab/cdef0123.webp",
    "ok-1_2.JPEG",
    "a/b.c/d.e",
    "a b.jpg",
    "../x.jpg",
    "./x",
    "a/../b",
    "a/./b",
    "x/.hidden",
    "é.jpg",
    "a//b",
    "http://x/y",
    "/abs/x",
    "q?x=1#y",
]


def test_media_urls_equal_the_storage_urls_for_plain_and_odd_names():
    assert media_urls(NAMES) == [default_storage.url(name) for name in NAMES]


@pytest.mark.parametrize("base", ["/media/", "https://cdn.example.org/m/"])
def test_media_urls_follow_the_configured_base(settings, base):
    settings.MEDIA_URL = base
    assert media_urls(NAMES) == [default_storage.url(name) for name in NAMES]
    assert media_urls(["thumbs/ab.webp"]) == [f"{base}thumbs/ab.webp"]
