"""A file cut short under its content-addressed name — an import killed while writing it: its chunk rolled back,
the file stayed — is written again whole by the next import of those bytes, not taken as the stored copy (which
was then served, truncated, as the image for ever)."""

from __future__ import annotations

import hashlib

from PIL import Image as PILImage

from annotation.models import Image, ImportBatch
from annotation.services.images import import_batch_create, import_foreground
from annotation.sources import Incoming


def test_an_original_and_a_thumbnail_cut_short_are_written_again_whole(db, media, dog, shapes):
    data = shapes[0].jpeg
    sha = hashlib.sha256(data).hexdigest()
    root = media
    original = root / "images" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    thumbnail = root / "thumbs" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    for path in (original, thumbnail):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[:1000])  # what a killed write leaves

    batch = import_batch_create(synset=dog, source=ImportBatch.Source.FOLDER)
    import_foreground(batch=batch, incoming=[Incoming("0.jpg", data=data)], workers=1)

    image = Image.objects.get()
    assert image.file.name == original.relative_to(root).as_posix()
    assert original.read_bytes() == data
    with PILImage.open(thumbnail) as thumb:
        thumb.load()  # a thumbnail cut short raises here
    assert thumbnail.stat().st_size > 1000
