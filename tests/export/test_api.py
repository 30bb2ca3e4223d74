"""The dataset API: 202 and polling, a streamed tar download, and who may do what (named actors; on every
denial, nothing is created)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from rest_framework.test import APIClient

from annotation.models import Image
from annotation.services.campaigns import campaign_create
from export import services
from export.models import DatasetImage, DatasetLabel, DatasetVersion
from export.services import options_normalise

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def body(campaign, **extra) -> dict:
    return {"name": "shapes", "campaigns": [campaign.id], "options": {"formats": ["imagenet", "votes"]}, **extra}


def assert_nothing_created() -> None:
    assert DatasetVersion.objects.count() == 0
    assert DatasetImage.objects.count() == DatasetLabel.objects.count() == 0


def test_admin_creates_polls_and_downloads_a_byte_identical_tar(
    campaign, admin, export_root, django_capture_on_commit_callbacks
) -> None:
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/datasets/", body(campaign, notes="first"), format="json")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["version"]) == ("pending", 1)
    assert len(callbacks) == 1
    status = client.get(response.json()["url"]).json()
    assert (status["status"], status["progress"], status["phase"]) == ("done", 1.0, "done")
    assert status["options"]["formats"] == ["imagenet", "votes"]
    assert status["campaigns"] == [campaign.id]

    download = client.get(status["download_url"])
    assert download.status_code == 200 and download["Content-Type"] == "application/x-tar"
    assert download["Content-Disposition"] == 'attachment; filename="shapes-v1.tar"'
    data = b"".join(download.streaming_content)
    assert int(download["Content-Length"]) == len(data)
    assert b"".join(client.get(status["download_url"]).streaming_content) == data  # deterministic
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert {m.mtime for m in members} == {int(DatasetVersion.objects.get().snapshot_at.timestamp())}
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        manifest_bytes = tar.extractfile(f"dataset-{status['id']}/manifest.json").read()
        manifest = json.loads(manifest_bytes)
        names = [m.name for m in members]
        assert names == [f"dataset-{status['id']}/{f['path']}" for f in manifest["files"]] + [
            f"dataset-{status['id']}/manifest.json"
        ]
        for entry in manifest["files"]:
            content = tar.extractfile(f"dataset-{status['id']}/{entry['path']}").read()
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert hashlib.sha256(manifest_bytes).hexdigest() == status["manifest_sha256"]

    listing = client.get("/api/v1/datasets/").json()
    assert [v["id"] for v in listing] == [status["id"]]


def test_researcher_exports_own_campaign_and_next_version_number(
    campaign, researcher, django_capture_on_commit_callbacks
) -> None:
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/datasets/", body(campaign), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post("/api/v1/datasets/", body(campaign), format="json")
    assert (first.status_code, second.status_code) == (202, 202)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)


@pytest.mark.parametrize("actor", ["anonymous", "worker"])
def test_anonymous_and_workers_may_not_create(campaign, worker, actor) -> None:
    client = client_for(None if actor == "anonymous" else worker)
    response = client.post("/api/v1/datasets/", body(campaign), format="json")
    assert response.status_code == (401 if actor == "anonymous" else 403)
    if actor == "worker":
        assert response.json() == {
            "detail": "Only admins, and researchers for their own campaigns, may create or read dataset versions.",
            "code": "permission_denied",
        }
    else:
        assert response.json()["code"] == "not_authenticated"
    assert_nothing_created()


def test_researcher_may_not_export_someone_elses_campaign(campaign, other_researcher) -> None:
    response = client_for(other_researcher).post("/api/v1/datasets/", body(campaign), format="json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Researchers may export only their own campaigns; ask an admin for the others.",
        "code": "forbidden",
    }
    assert_nothing_created()


def test_researcher_cannot_see_someone_elses_version(
    campaign, admin, other_researcher, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(admin).post("/api/v1/datasets/", body(campaign), format="json").json()
    other = client_for(other_researcher)
    assert other.get(f"/api/v1/datasets/{created['id']}/").status_code == 404
    assert other.get(f"/api/v1/datasets/{created['id']}/download/").status_code == 404
    assert other.get("/api/v1/datasets/").json() == []


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"split": {"train": 0.5, "val": 0.1, "test": 0.1}},
         "The split fractions must add up to 1; they add up to 0.7."),
        ({"formats": ["tfrecord"]}, "formats must be a non-empty list of: imagenet, coco, voc, webdataset, votes."),
        ({"synsets": ["n02084071"]}, "n02084071 is not a synset of the chosen campaigns."),
        ({"image_size": {"policy": "resized", "max_side": 4}},
         "image_size.max_side must be a whole number from 16 to 8192; got 4."),
        ({"colour": "blue"}, "Unknown option 'colour'; known: synsets, min_confidence, include_ancestors, split, "
                             "image_size, formats, shard_max_images, shard_max_bytes."),
        # wrong types where an object is expected (these raised TypeError: a 500)
        ({"split": "80/10/10"}, 'split must be an object such as {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0}.'),
        ({"split": [0.8, 0.1, 0.1]},
         'split must be an object such as {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0}.'),
        ({"image_size": "big"}, 'image_size must be an object such as {"policy": "resized", "max_side": 256}.'),
        ({"image_size": {"policy": "resized", "max_side": 64, "quality": 9}},
         "image_size takes a policy ('original' or 'resized') and a max_side."),
        ({"synsets": []}, "synsets names no synset; leave it out to export every synset of the campaigns."),
        # unhashable or non-string values where names are expected (these raised TypeError: a 500)
        ({"formats": [["coco"]]}, "formats must be a non-empty list of: imagenet, coco, voc, webdataset, votes."),
        ({"formats": [{"a": 1}]}, "formats must be a non-empty list of: imagenet, coco, voc, webdataset, votes."),
        ({"formats": "coco"}, "formats must be a non-empty list of: imagenet, coco, voc, webdataset, votes."),
        ({"synsets": [["n13873502"]]}, "synsets must be a list of wnids such as n02084071."),
        ({"synsets": "n13873502"}, "synsets must be a list of wnids such as n02084071."),
        ({"image_size": {"policy": ["resized"], "max_side": 64}},
         "image_size.policy must be 'original' or 'resized' (with max_side)."),
        ({"image_size": {"policy": {"a": 1}}}, "image_size.policy must be 'original' or 'resized' (with max_side)."),
        ({"min_confidence": [0.5]}, "min_confidence must be a number from 0.0 to 1.0; got [0.5]."),
        ({"min_confidence": "0.5"}, "min_confidence must be a number from 0.0 to 1.0; got '0.5'."),
        ({"include_ancestors": "yes"}, "include_ancestors must be true or false."),
        ({"split": {"train": [1]}}, "split.train must be a number from 0.0 to 1.0; got [1]."),
        ({"split": {"seed": {"a": 1}}}, "split.seed must be a whole number from 0 to 2147483647; got {'a': 1}."),
        ({"split": {"seed": 1.5}}, "split.seed must be a whole number from 0 to 2147483647; got 1.5."),
        ({"shard_max_images": [1]}, "shard_max_images must be a whole number from 1 to 10000000; got [1]."),
        ({"shard_max_bytes": True},
         "shard_max_bytes must be a whole number from 1048576 to 1099511627776; got True."),
        # a split naming some fractions: the others are 0, not the defaults
        ({"split": {"train": 0.9}}, "The split fractions must add up to 1; they add up to 0.9."),
    ],
)  # fmt: skip
def test_bad_options_answer_400_with_a_sentence_and_create_nothing(campaign, admin, options, sentence) -> None:
    response = client_for(admin).post("/api/v1/datasets/", {**body(campaign), "options": options}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": sentence, "code": "invalid"}
    assert_nothing_created()


def test_options_that_are_not_an_object_and_unknown_campaigns_answer_400(campaign, admin) -> None:
    client = client_for(admin)

    not_object = client.post("/api/v1/datasets/", {**body(campaign), "options": ["imagenet"]}, format="json")
    unknown = client.post("/api/v1/datasets/", {**body(campaign), "campaigns": [campaign.id + 999]}, format="json")

    assert not_object.status_code == unknown.status_code == 400
    assert unknown.json()["detail"] == f"No campaign {campaign.id + 999}."
    assert_nothing_created()


def test_a_split_naming_only_train_puts_every_image_in_train() -> None:
    split = options_normalise({"split": {"train": 1}})["split"]

    assert split == {"train": 1.0, "val": 0.0, "test": 0.0, "seed": 0}


def test_an_existing_version_number_is_a_conflict(campaign, admin, django_capture_on_commit_callbacks) -> None:
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/datasets/", body(campaign, version=3), format="json").status_code == 202
    response = client.post("/api/v1/datasets/", body(campaign, version=3), format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "shapes v3 exists already; versions are immutable, create a new one."
    assert DatasetVersion.objects.count() == 1


def test_download_of_an_unfinished_version_is_refused(campaign, admin) -> None:
    client = client_for(admin)
    created = client.post("/api/v1/datasets/", body(campaign), format="json").json()  # job not run: pending
    response = client.get(f"/api/v1/datasets/{created['id']}/download/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Version {created['id']} is pending; only a done version downloads.",
        "code": "conflict",
    }


def test_the_list_narrows_to_one_campaign_and_refuses_a_malformed_one(
    campaign, admin, researcher, export_root, django_capture_on_commit_callbacks
) -> None:
    other = campaign_create(owner=researcher, name="Other shapes", wnids=["n13878306"], gold_rate=0.0)
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/datasets/", body(campaign), format="json").json()["id"]
        client.post("/api/v1/datasets/", body(other, name="others"), format="json")
    assert len(client.get("/api/v1/datasets/").json()) == 2
    assert [v["id"] for v in client.get("/api/v1/datasets/", {"campaign": campaign.id}).json()] == [first]
    assert client.get("/api/v1/datasets/", {"campaign": 10**6}).json() == []
    malformed = client.get("/api/v1/datasets/", {"campaign": "shapes"})
    assert malformed.status_code == 400, malformed.content
    assert malformed.json()["detail"] == "campaign: A valid integer is required."


def test_researcher_sees_and_downloads_a_version_an_admin_built_of_their_campaign(
    campaign, admin, researcher, other_researcher, django_capture_on_commit_callbacks
) -> None:
    """Given a version an admin built of the researcher's campaign, the researcher (its owner) lists,
    reads and downloads it, as the dashboard's Datasets panel does (?campaign=); another researcher does not."""
    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(admin).post("/api/v1/datasets/", body(campaign), format="json").json()
    owner = client_for(researcher)

    listed = owner.get("/api/v1/datasets/", {"campaign": campaign.id}).json()
    detail = owner.get(f"/api/v1/datasets/{created['id']}/")
    download = owner.get(f"/api/v1/datasets/{created['id']}/download/")

    assert [v["id"] for v in listed] == [created["id"]]
    assert [v["id"] for v in owner.get("/api/v1/datasets/").json()] == [created["id"]]
    assert detail.status_code == 200 and detail.json()["status"] == "done"
    assert download.status_code == 200 and b"".join(download.streaming_content)
    other = client_for(other_researcher)
    assert other.get("/api/v1/datasets/").json() == []
    assert other.get(f"/api/v1/datasets/{created['id']}/download/").status_code == 404


def test_a_version_mixing_campaigns_is_visible_to_each_owner_once(
    campaign, admin, researcher, other_researcher, export_root, django_capture_on_commit_callbacks
) -> None:
    theirs = campaign_create(owner=other_researcher, name="Other shapes", wnids=["n13878306"], gold_rate=0.0)
    with django_capture_on_commit_callbacks(execute=True):
        created = (
            client_for(admin)
            .post("/api/v1/datasets/", {**body(campaign), "campaigns": [campaign.id, theirs.id]}, format="json")
            .json()
        )

    for user in (researcher, other_researcher):
        assert [v["id"] for v in client_for(user).get("/api/v1/datasets/").json()] == [created["id"]]


@pytest.mark.parametrize("version", [2147483647, 1_000_001, 2**40])
def test_an_explicit_version_above_a_million_answers_400_and_creates_nothing(campaign, admin, version) -> None:
    response = client_for(admin).post("/api/v1/datasets/", body(campaign, version=version), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"version must be a whole number from 1 to 1,000,000; got {version}.",
        "code": "invalid",
    }
    assert_nothing_created()


def test_version_one_million_is_accepted_and_the_next_automatic_one_follows(
    campaign, admin, django_capture_on_commit_callbacks
) -> None:
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=False):
        top = client.post("/api/v1/datasets/", body(campaign, version=1_000_000), format="json")
        DatasetVersion.objects.filter(id=top.json()["id"]).update(status=DatasetVersion.Status.DONE)  # built
        after = client.post("/api/v1/datasets/", body(campaign), format="json")

    assert (top.status_code, after.status_code) == (202, 202)
    assert (top.json()["version"], after.json()["version"]) == (1_000_000, 1_000_001)


@pytest.mark.parametrize(
    ("name", "version", "filename"),
    [
        ("shapes", 3, "shapes-v3.tar"),
        ("Shapes & circles / 2026", 12, "Shapes-circles-2026-v12.tar"),
        ('../"evil"\r\nX-Header: 1', 1, "evil-X-Header-1-v1.tar"),
        ("ÿÿÿ", 2, "ÿÿÿ-v2.tar"),
        ('Ünïcødé 鳥 / ../../etc "x"', 1, "Ünïcødé-鳥-etc-x-v1.tar"),
        ("_ ~ _", 4, "dataset-v4.tar"),
        ("my.data...v2", 5, "my.data.v2-v5.tar"),
    ],
)
def test_the_download_filename_is_the_safe_name_and_version(name, version, filename) -> None:
    assert services.download_filename(DatasetVersion(name=name, version=version)) == filename


def test_a_failed_build_answers_409_with_why_without_server_paths_and_is_retried_under_its_name(
    campaign, admin, export_root, settings, django_capture_on_commit_callbacks
) -> None:
    """Given a build that fails (an original gone from storage), its error names the file but no server
    folder, its download is a 409 saying why, and creating the name again replaces it as v1."""
    client = client_for(admin)
    image = Image.objects.filter(candidates__state="accepted").order_by("id").first()
    stored = settings.MEDIA_ROOT / image.file.name
    hidden = stored.with_suffix(".hidden")
    stored.rename(hidden)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/datasets/", body(campaign), format="json").json()
    failed = client.get(f"/api/v1/datasets/{created['id']}/").json()

    assert failed["status"] == "failed"
    assert failed["error"].startswith("FileNotFoundError: ") and stored.name in failed["error"]
    for secret in (str(settings.MEDIA_ROOT), str(export_root), str(settings.DATA_DIR), "/tmp/"):
        assert secret not in failed["error"]
    download = client.get(f"/api/v1/datasets/{created['id']}/download/")
    assert download.status_code == 409
    assert download.json() == {
        "detail": f"Version {created['id']} (shapes v1) failed to build, so there is nothing to download: "
        f"{failed['error']}. Create it again with the same name to retry.",
        "code": "conflict",
    }

    hidden.rename(stored)
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post("/api/v1/datasets/", body(campaign), format="json").json()

    assert retried["version"] == 1 and retried["id"] != created["id"]
    assert client.get(f"/api/v1/datasets/{retried['id']}/").json()["status"] == "done"
    assert list(DatasetVersion.objects.values_list("name", "version", "status")) == [("shapes", 1, "done")]
    assert DatasetImage.objects.exclude(version_id=retried["id"]).count() == 0


def test_a_done_version_is_never_replaced(campaign, admin, django_capture_on_commit_callbacks) -> None:
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/datasets/", body(campaign), format="json").json()
    again = client.post("/api/v1/datasets/", body(campaign, version=1), format="json")

    assert again.status_code == 409
    assert list(DatasetVersion.objects.values_list("id", "status")) == [(first["id"], "done")]


def test_a_second_build_of_a_name_while_one_is_unfinished_is_a_conflict(campaign, admin) -> None:
    client = client_for(admin)
    first = client.post("/api/v1/datasets/", body(campaign), format="json")  # job not run: pending

    again = client.post("/api/v1/datasets/", body(campaign), format="json")  # a double click
    explicit = client.post("/api/v1/datasets/", body(campaign, version=7), format="json")

    assert first.status_code == 202
    assert again.status_code == explicit.status_code == 409
    assert again.json()["detail"] == (
        "shapes v1 is still being built (pending); build the next version of this name when it is done."
    )
    assert DatasetVersion.objects.count() == 1
    assert client.post("/api/v1/datasets/", body(campaign, name="other"), format="json").status_code == 202


def test_a_name_with_another_researchers_versions_is_refused_and_their_failed_version_kept(
    campaign, researcher, other_researcher, admin, django_capture_on_commit_callbacks
) -> None:
    """QA: names are one namespace for everybody, and creating a name replaced any failed version of it (and
    number) — another researcher's too, whose row (notes, error) was deleted by someone who may not even see it.
    Then another researcher's "shapes" went on as v2 of the first one's series, with its splits. A name with
    versions the caller cannot see is refused, whatever the number; an admin sees them all and goes on."""
    theirs = DatasetVersion.objects.create(
        name="shapes", version=1, status=DatasetVersion.Status.FAILED, error="OSError: disk full", notes="mine",
        options=options_normalise({}), created_by=researcher,
    )  # fmt: skip
    theirs.campaigns.set([campaign])
    own = campaign_create(owner=other_researcher, name="Other shapes", wnids=["n13878306"], gold_rate=0.0)
    client = client_for(other_researcher)

    for payload in (body(own, version=1), body(own), body(own, version=2)):
        response = client.post("/api/v1/datasets/", payload, format="json")
        assert response.status_code == 409
        assert response.json()["detail"] == (
            "The name shapes is used by dataset versions you cannot see (another researcher's); choose another name."
        )
    assert list(DatasetVersion.objects.values_list("id", "status", "notes", "created_by")) == [
        (theirs.id, "failed", "mine", researcher.id)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = client.post("/api/v1/datasets/", body(own, name="other shapes"), format="json")
    assert elsewhere.status_code == 202, elsewhere.content

    # An admin sees every version: creating the name retries the failed one under its number.
    with django_capture_on_commit_callbacks(execute=True):
        retried = client_for(admin).post("/api/v1/datasets/", body(campaign), format="json")
    assert retried.status_code == 202, retried.content
    assert retried.json()["version"] == 1
    assert not DatasetVersion.objects.filter(id=theirs.id).exists()


def test_a_version_name_with_a_direction_override_is_refused(campaign, admin) -> None:
    response = client_for(admin).post("/api/v1/datasets/", body(campaign, name="shapes\u202e1v"), format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "A dataset version's name may not hold control or text-direction characters (U+202E)."
    )
    assert_nothing_created()


def _built(client, campaign, django_capture_on_commit_callbacks, name: str = "shapes") -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/datasets/", body(campaign, name=name), format="json")
    status = client.get(response.json()["url"]).json()
    assert status["status"] == "done", status
    return status


def test_a_download_resumes_from_any_byte_with_a_range_request(
    campaign, admin, export_root, django_capture_on_commit_callbacks
) -> None:
    """``curl -C -`` and ``wget -c`` send ``Range: bytes=N-``: the rest of the archive comes back as a 206,
    byte for byte what the whole download holds from N on, wherever N falls (a header, a file's content, its
    padding, the end-of-archive blocks)."""
    client = client_for(admin)
    status = _built(client, campaign, django_capture_on_commit_callbacks)
    full = client.get(status["download_url"])
    data = b"".join(full.streaming_content)
    etag = full["ETag"]
    assert full["Accept-Ranges"] == "bytes" and etag.startswith('"')
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    offsets = [m.offset for m in members] + [m.offset_data for m in members]
    starts = sorted({0, 1, 511, 512, 513, len(data) - 1025, len(data) - 1, *offsets, *(o + 7 for o in offsets)})

    for start in starts:
        part = client.get(status["download_url"], HTTP_RANGE=f"bytes={start}-")
        assert part.status_code == 206, start
        assert part["Content-Range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
        rest = b"".join(part.streaming_content)
        assert int(part["Content-Length"]) == len(rest) and rest == data[start:], start
    for header, first, last in [("bytes=100-2099", 100, 2099), ("bytes=-700", len(data) - 700, len(data) - 1),
                                (f"bytes=5-{len(data) + 50}", 5, len(data) - 1)]:  # fmt: skip
        part = client.get(status["download_url"], HTTP_RANGE=header, HTTP_IF_RANGE=etag)
        assert part.status_code == 206 and part["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
        assert b"".join(part.streaming_content) == data[first : last + 1]


@pytest.mark.parametrize(
    ("headers", "status_code"),
    [
        ({"HTTP_RANGE": "bytes=10-", "HTTP_IF_RANGE": '"another-version"'}, 200),  # changed since: all of it
        ({"HTTP_RANGE": "bytes=0-10,20-30"}, 200),  # several ranges: ignored, as RFC 9110 allows
        ({"HTTP_RANGE": "items=0-10"}, 200),  # another unit
        ({"HTTP_RANGE": "bytes=30-10"}, 200),  # invalid: ignored
        ({"HTTP_RANGE": "bytes=999999999-"}, 416),
        ({"HTTP_RANGE": "bytes=-0"}, 416),
    ],
)
def test_ranges_a_download_cannot_serve_give_the_whole_archive_or_a_416(
    headers, status_code, campaign, admin, export_root, django_capture_on_commit_callbacks
) -> None:
    client = client_for(admin)
    status = _built(client, campaign, django_capture_on_commit_callbacks)
    whole = b"".join(client.get(status["download_url"]).streaming_content)

    response = client.get(status["download_url"], **headers)

    assert response.status_code == status_code
    if status_code == 200:
        assert b"".join(response.streaming_content) == whole
    else:
        assert response["Content-Range"] == f"bytes */{len(whole)}"
        assert response.json()["detail"] == (
            f"The range asked for starts past the end of the {len(whole)}-byte archive."
        )


def test_the_schema_documents_every_export_option_as_the_service_knows_them(campaign, admin) -> None:
    """Client generators read the options' shape from the OpenAPI schema (it used to be a free-form object):
    the documented names are the service's, and an answer's options carry exactly those."""
    from export.formats import FORMATS

    schemas = client_for(admin).get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    options = schemas["ExportOptions"]["properties"]

    assert set(options) == set(services.DEFAULT_OPTIONS)
    assert set(schemas["ExportSplit"]["properties"]) == set(services.DEFAULT_OPTIONS["split"])
    assert set(schemas["ExportImageSize"]["properties"]) == set(services.DEFAULT_OPTIONS["image_size"])
    assert set(schemas[options["formats"]["items"]["$ref"].rsplit("/", 1)[1]]["enum"]) == set(FORMATS)
    reference = {"$ref": "#/components/schemas/ExportOptions"}
    assert schemas["DatasetListInput"]["properties"]["options"] == reference
    assert schemas["DatasetVersion"]["properties"]["options"]["allOf"] == [reference]
    assert set(options_normalise({})) == set(options)
