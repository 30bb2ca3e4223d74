"""WebDataset shards for training at scale:

    webdataset/<split>-000000.tar, <split>-000001.tar, …   samples in the version's seeded shuffle order
    webdataset/classes.txt                                  the class index of ``.cls``: line i = class i

Each sample is ``<key>.<jpg|png|…>`` (the original bytes when the size policy keeps them), ``<key>.cls``
(the primary class index) and ``<key>.json`` (image id, primary wnid, every label with its posterior and
model version, boxes, size). A shard closes when it holds ``shard_max_images`` samples or would pass
``shard_max_bytes``. Written with the standard tarfile headers but our own member writer (export.files.
TarStream) rather than the webdataset package's TarWriter: that one needs each image as bytes in memory
and stamps the wall-clock time unless told otherwise; ours streams each image from storage and stamps the
snapshot time, uid/gid 0 and no user names, so shards are byte-identical across builds. The webdataset
package reads them (tests/export).
"""

from __future__ import annotations

from export.files import TarStream, json_line
from export.formats.base import Context

NAME = "webdataset"
ROOT = "webdataset"
TAR_OVERHEAD = 3 * 512 * 2  # three members, header + worst-case padding each


def write(ctx: Context) -> None:
    index = {wnid: i for i, wnid in enumerate(ctx.classes)}
    ctx.folder.write_bytes(f"{ROOT}/classes.txt", "".join(f"{w}\n" for w in ctx.classes).encode())
    max_images = ctx.options["shard_max_images"]
    max_bytes = ctx.options["shard_max_bytes"]
    for split in ("train", "val", "test"):
        shard = _Shards(ctx, split, max_images, max_bytes)
        try:
            for item in ctx.items(split=split, order="shuffle"):
                with ctx.image(item) as data:
                    meta = {
                        "image_id": item.image_id,
                        "label": item.wnid,
                        "cls": index[item.wnid],
                        "labels": [
                            {
                                "wnid": x.wnid,
                                "posterior": x.posterior,
                                "model_version": x.model_version,
                                "direct": x.direct,
                            }
                            for x in item.labels
                        ],
                        "boxes": [[b.wnid, b.x1, b.y1, b.x2, b.y2] for b in data.scale_boxes(item)],
                        "width": data.width,
                        "height": data.height,
                        "sha256": item.sha256,
                        "split": split,
                    }
                    meta_bytes = json_line(meta)
                    cls_bytes = f"{index[item.wnid]}".encode()
                    tar = shard.next(data.size + len(meta_bytes) + len(cls_bytes) + TAR_OVERHEAD)
                    key = f"{item.image_id:012d}"
                    tar.add_bytes(f"{key}.cls", cls_bytes)
                    tar.add_stream(f"{key}.{data.ext}", data.stream, data.size)
                    tar.add_bytes(f"{key}.json", meta_bytes)
                ctx.tick(1)
        finally:
            shard.close()


class _Shards:
    """Opens ``<split>-%06d.tar`` files as samples arrive; a split with no images has no shard."""

    def __init__(self, ctx: Context, split: str, max_images: int, max_bytes: int):
        self.ctx, self.split, self.max_images, self.max_bytes = ctx, split, max_images, max_bytes
        self.number, self.count, self._file, self._tar = -1, 0, None, None

    def next(self, sample_bytes: int) -> TarStream:
        full = self._tar is not None and (
            self.count >= self.max_images or self._tar.size + sample_bytes + 1024 > self.max_bytes
        )
        if self._tar is None or full:
            self.close()
            self.number += 1
            self._opened = self.ctx.folder.open(f"{ROOT}/{self.split}-{self.number:06d}.tar")
            self._file = self._opened.__enter__()
            self._tar = TarStream(self._file, self.ctx.mtime)
            self.count = 0
        self.count += 1
        return self._tar

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
            self._opened.__exit__(None, None, None)
