"""The image import API: 202 and polling, per-file results, permissions, and thumbnails served with
year-long cache headers."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import Candidate, Image, ImportBatch, ImportItem
from tests.annotation.conftest import DOG, stored_files


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def test_upload_answers_202_and_the_batch_can_be_polled(
    db, media, dog, researcher, shapes, django_capture_on_commit_callbacks
) -> None:
    client = client_for(researcher)
    files = [upload("a.jpg", shapes[0].jpeg), upload("b.jpg", shapes[1].jpeg), upload("a-again.jpg", shapes[0].jpeg),
             upload("bad.jpg", b"not an image")]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/api/v1/image-imports/", {"synset": DOG, "query_term": "dog", "files": files}, format="multipart"
        )
    assert response.status_code == 202
    batch = ImportBatch.objects.get()
    assert response.json()["id"] == batch.id
    assert (response.json()["status"], response.json()["total"]) == ("pending", 4)
    assert len(callbacks) >= 1  # the task was queued after commit, and ran (eager)

    status = client.get(f"/api/v1/image-imports/{batch.id}/").json()
    assert status["status"] == "done"
    assert (status["synset"], status["source"], status["query_term"]) == (DOG, "upload", "dog")
    assert status["counts"] == {"accepted": 2, "duplicate": 1, "near_duplicate": 0, "rejected": 1}
    assert (status["total"], status["processed"]) == (4, 4)
    listing = client.get(status["items_url"]).json()
    a = Candidate.objects.get(image__sha256=Image.objects.order_by("id").first().sha256)
    assert [(i["name"], i["outcome"], i["code"]) for i in listing["results"]] == [
        ("a.jpg", "accepted", ""),
        ("b.jpg", "accepted", ""),
        ("a-again.jpg", "duplicate", "duplicate"),
        ("bad.jpg", "rejected", "not_an_image"),
    ]
    assert listing["results"][2]["candidate"] == a.id
    assert listing["results"][3]["reason"] == "The file is not a readable image (JPEG, PNG, WebP, GIF or BMP)."
    rejected = client.get(status["items_url"] + "?outcome=rejected").json()
    assert [i["name"] for i in rejected["results"]] == ["bad.jpg"]
    assert not any(name.startswith("imports/") for name in stored_files(media))  # staged uploads removed
    assert not (media / "imports" / str(batch.id)).exists()  # and their folder (QA: empty folders piled up)
    assert len(stored_files(media)) == 4


def test_url_list_import_runs_in_celery_and_reports_each_url(
    db, media, dog, researcher, shapes, image_server, django_capture_on_commit_callbacks
) -> None:
    good = image_server.add("/a.jpg", shapes[0].jpeg)
    page = image_server.add("/p", b"<html></html>", Content_Type="text/html")
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/image-imports/", {"synset": DOG, "urls": [good, page]}, format="json")
    assert response.status_code == 202
    status = client.get(f"/api/v1/image-imports/{response.json()['id']}/").json()
    assert (status["status"], status["source"]) == ("done", "url")
    assert status["counts"] == {"accepted": 1, "duplicate": 0, "near_duplicate": 0, "rejected": 1}
    reasons = [(i.name, i.reason) for i in ImportItem.objects.order_by("id")]
    assert reasons == [(good, ""), (page, "The server sent text/html, not an image.")]


def test_big_url_batches_are_processed_in_several_tasks(
    db, media, dog, researcher, image_server, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    monkeypatch.setattr("annotation.services.images.TASK_ITEMS", 2)
    urls = [image_server.base + f"/missing{i}" for i in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(researcher).post("/api/v1/image-imports/", {"synset": DOG, "urls": urls}, format="json")
    batch = ImportBatch.objects.get(id=response.json()["id"])
    assert (batch.status, batch.rejected, batch.total) == ("done", 5, 5)
    assert list(batch.items.values_list("code", flat=True).distinct()) == ["http_status"]


@pytest.mark.parametrize(
    ("payload", "fmt", "detail", "code"),
    [
        ({"synset": "dog", "urls": ["http://x/y.jpg"]}, "json",
         "synset: 'dog' is not a wnid: expected 'n' followed by 8 digits, as in n02084071.", "invalid_wnid"),
        ({"synset": "n99999999", "urls": ["http://x/y.jpg"]}, "json",
         "synset: No synset n99999999 in this database.", "unknown_synset"),
        ({"synset": DOG}, "json", "Send either image files (multipart 'files') or a list of 'urls'.", "invalid"),
        ({"synset": DOG, "urls": "http://x/y.jpg"}, "json", 'urls: Expected a list of items but got type "str".',
         "not_a_list"),
    ],
)  # fmt: skip
def test_bad_requests_answer_400_with_a_sentence_and_change_nothing(
    db, media, researcher, payload, fmt, detail, code
) -> None:
    response = client_for(researcher).post("/api/v1/image-imports/", payload, format=fmt)
    assert response.status_code == 400
    assert (response.json()["detail"], response.json()["code"]) == (detail, code)
    assert not ImportBatch.objects.exists() and stored_files(media) == []


def test_too_many_urls_are_refused(db, media, researcher, settings) -> None:
    settings.IMAGE_IMPORT_MAX_URLS = 2
    response = client_for(researcher).post(
        "/api/v1/image-imports/", {"synset": DOG, "urls": ["http://a/1", "http://a/2", "http://a/3"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "urls: At most 2 URLs per import."
    assert not ImportBatch.objects.exists()


@pytest.mark.parametrize("actor", ["anonymous", "worker"])
def test_only_researchers_and_admins_may_import(db, media, request, shapes, actor) -> None:
    user = None if actor == "anonymous" else request.getfixturevalue(actor)
    client = client_for(user)
    response = client.post(
        "/api/v1/image-imports/", {"synset": DOG, "files": [upload("a.jpg", shapes[0].jpeg)]}, format="multipart"
    )
    status, detail, code = (
        (401, "Authentication credentials were not provided.", "not_authenticated")
        if actor == "anonymous"
        else (403, "Only researchers and admins may import or list candidate images.", "permission_denied")
    )
    assert (response.status_code, response.json()["detail"], response.json()["code"]) == (status, detail, code)
    assert not ImportBatch.objects.exists() and not Image.objects.exists() and stored_files(media) == []
    assert client.get("/api/v1/image-imports/1/").status_code == status
    assert client.get(f"/api/v1/synsets/{DOG}/candidates/").status_code == status


def test_admin_may_import_and_list_candidates(db, media, admin, shapes, django_capture_on_commit_callbacks) -> None:
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/image-imports/", {"synset": DOG, "files": [upload("a.jpg", shapes[0].jpeg)]}, format="multipart"
        )
    assert response.status_code == 202
    listing = client.get(f"/api/v1/synsets/{DOG}/candidates/?state=new").json()
    assert listing["count"] == 1
    candidate = listing["results"][0]
    image = Image.objects.get()
    assert candidate["urls"] == {
        "thumbnail": f"http://testserver/media/{image.thumbnail.name}",
        "medium": f"http://testserver/media/{image.file.name}",
        "original": f"http://testserver/media/{image.file.name}",
    }
    assert (candidate["width"], candidate["height"], candidate["state"]) == (image.width, image.height, "new")


def test_a_synsets_candidates_url_with_an_unknown_wnid_is_404_and_a_malformed_one_400(db, researcher) -> None:
    unknown = client_for(researcher).get("/api/v1/synsets/n99999999/candidates/")
    malformed = client_for(researcher).get("/api/v1/synsets/nXXX/candidates/")
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "No synset n99999999 in this database.")
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_wnid"


def test_unknown_batch_is_404(db, researcher) -> None:
    response = client_for(researcher).get("/api/v1/image-imports/999999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No image import 999999.", "code": "not_found"}


def test_thumbnails_are_served_with_year_long_cache_headers(
    db, media, researcher, shapes, client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client_for(researcher).post(
            "/api/v1/image-imports/", {"synset": DOG, "files": [upload("a.jpg", shapes[0].jpeg)]}, format="multipart"
        )
    image = Image.objects.get()
    response = client.get(f"/media/{image.thumbnail.name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"".join(response.streaming_content) == (media / image.thumbnail.name).read_bytes()
    original = client.get(f"/media/{image.file.name}")
    assert b"".join(original.streaming_content) == shapes[0].jpeg


@pytest.mark.parametrize("name", ["imports/1/2", "thumbs/../../etc/passwd", "thumbs/ab/cd/" + "0" * 64 + ".jpg"])
def test_media_view_serves_only_stored_content_addressed_files(db, media, client, name) -> None:
    (media / "imports" / "1").mkdir(parents=True)
    (media / "imports" / "1" / "2").write_bytes(b"staged")
    assert client.get(f"/media/{name}").status_code == 404


def test_images_go_only_into_queues_the_importer_may_fill(db, media, dog, researcher, shapes) -> None:
    # A candidate is shared by every campaign over its synset: another researcher's import went into this
    # researcher's HITs, and the campaign dashboard's form took a synset of no campaign of its own (QA).
    from annotation.services.campaigns import campaign_create
    from workers.roles import Role
    from workers.services import account_create

    other = account_create(username="other-researcher", password="pw-other-1", role=Role.RESEARCHER)
    campaign = campaign_create(owner=researcher, name="dogs", wnids=[DOG])
    theirs = client_for(other)
    refused = theirs.post(
        "/api/v1/image-imports/", {"synset": DOG, "urls": ["http://example.com/a.jpg"]}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        f"{DOG} is in another researcher's unfinished campaign, and its images are shared by every campaign over "
        "it: only that researcher or an admin may add images to it until it is finished."
    )
    elsewhere = client_for(researcher).post(
        "/api/v1/image-imports/",
        {"synset": "n13873502", "campaign": campaign.id, "urls": ["http://example.com/a.jpg"]},
        format="json",
    )
    assert elsewhere.status_code == 400
    assert elsewhere.json()["detail"] == "n13873502 is not a synset of campaign “dogs”."
    not_theirs = theirs.post(
        "/api/v1/image-imports/",
        {"synset": DOG, "campaign": campaign.id, "urls": ["http://example.com/a.jpg"]},
        format="json",
    )
    assert not_theirs.status_code == 404
    assert not ImportBatch.objects.exists()
    own = client_for(researcher).post(
        "/api/v1/image-imports/", {"synset": DOG, "campaign": campaign.id, "files": [upload("a.jpg", shapes[0].jpeg)]}
    )
    assert own.status_code == 202
