"""Deleting images in the Django admin: an image a candidate or a dataset version uses cannot be deleted (its
candidate's votes, gold answer and boxes would go with it), and an unused one goes with its files, once the
deletion has committed — but never a file another Image row still names."""

from __future__ import annotations

import pytest

from annotation.models import Candidate, Image, ImportBatch
from annotation.services.images import import_batch_create, import_foreground
from annotation.sources import Incoming
from taxonomy.models import Synset
from tests.annotation.conftest import DOG, stored_files

pytestmark = pytest.mark.django_db


def _imported(media, *images: bytes) -> list[Image]:
    batch = import_batch_create(synset=Synset.objects.get(id=int(DOG[1:])), source=ImportBatch.Source.FOLDER)
    import_foreground(batch=batch, incoming=[Incoming(f"{i}.jpg", data=data) for i, data in enumerate(images)])
    return list(Image.objects.order_by("id"))


def _files(image: Image) -> set[str]:
    return {image.file.name, image.thumbnail.name, image.medium.name}


def test_deleting_an_unused_image_in_the_admin_removes_its_files(
    admin_client, media, dog, shapes, django_capture_on_commit_callbacks
):
    unused, kept = _imported(media, shapes[0].jpeg, shapes[1].jpeg)
    Candidate.objects.filter(image=unused).delete()  # e.g. its candidate was removed for a wrong synset

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/annotation/image/{unused.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(Image.objects.values_list("id", flat=True)) == [kept.id]
    assert stored_files(media) == sorted(_files(kept))


def test_deleting_selected_unused_images_in_the_admin_removes_their_files(
    admin_client, media, dog, shapes, django_capture_on_commit_callbacks
):
    first, second, kept = _imported(media, shapes[0].jpeg, shapes[1].jpeg, shapes[2].jpeg)
    Candidate.objects.filter(image__in=[first, second]).delete()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/annotation/image/",
            {"action": "delete_selected", "_selected_action": [first.id, second.id], "post": "yes"},
        )

    assert response.status_code == 302
    assert list(Image.objects.values_list("id", flat=True)) == [kept.id]
    assert stored_files(media) == sorted(_files(kept))


def test_the_admin_refuses_to_delete_an_image_a_candidate_uses_and_says_why(
    admin_client, media, dog, shapes, django_capture_on_commit_callbacks
):
    (image,) = _imported(media, shapes[0].jpeg)
    before = stored_files(media)

    page = admin_client.get(f"/admin/annotation/image/{image.id}/delete/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/annotation/image/{image.id}/delete/", {"post": "yes"})

    assert "would require deleting the following protected related objects" in page
    assert "votes, gold answers and boxes" in page
    assert response.status_code == 200  # the same refusal, nothing deleted
    assert Image.objects.get().id == image.id and Candidate.objects.get().image_id == image.id
    assert stored_files(media) == before
