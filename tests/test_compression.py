"""JSON and HTML answers are gzipped for clients that accept it; images and other media are sent as they are."""

import gzip
import json

import pytest
from django.test import Client
from PIL import Image as PILImage

pytestmark = pytest.mark.django_db


def test_json_is_gzipped_when_accepted_and_plain_otherwise() -> None:
    client = Client()
    url = "/api/v1/synsets/n00007846/descendants/?leaves=true"  # a long page of person.n.01's leaves
    plain = client.get(url)
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert json.loads(gzip.decompress(packed.content)) == plain.json()
    assert len(packed.content) < len(plain.content) / 2  # 0.33-0.34 of it for this page


def test_pages_are_gzipped_and_media_files_are_not(settings, tmp_path) -> None:
    client = Client()
    page = client.get("/taxonomy/?q=dog", HTTP_ACCEPT_ENCODING="gzip")
    assert page.status_code == 200 and page["Content-Encoding"] == "gzip"
    settings.MEDIA_ROOT = tmp_path
    name = f"thumbs/ab/cd/{'ab' * 32}.jpg"
    (tmp_path / name).parent.mkdir(parents=True)
    PILImage.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / name, "JPEG")
    image = client.get(f"/media/{name}", HTTP_ACCEPT_ENCODING="gzip")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert "Content-Encoding" not in image
    assert b"".join(image.streaming_content) == (tmp_path / name).read_bytes()
