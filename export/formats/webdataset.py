"""WebDataset shards for training at scale:

    webdataset/<split>-000000.tar, <split>-000001.tar, …   samples in the version's seeded shuffle order
    webdataset/classes.txt                                  the class index of ``.cls``: line i = class i

Each sample is ``<key>.<jpg|png|…>`` (the original bytes when the size policy keeps them), ``<key>.cls``
(the primary class index) and ``<key>.json`` (image id, primary wnid, every label with its posterior and
model version, boxes, size). A shard closes when it holds ``shard_max_images`` samples or would pass
``shard_max_bytes``. Written with the standard tarfile headers but our own member writer (export.files.
TarStream) rather than the webdataset package's TarWriter, which stamps the wall-clock time unless told
otherwise; ours stamps the snapshot time, uid/gid 0 and no user names, so shards are byte-identical across
builds. On local storage an unchanged original is read in one call and the three members of a sample go
out in one write, with the JSON formatted directly (``sample_json``, equal to the canonical ``json_line``);
otherwise the image streams through ``Context.image``. The webdataset package reads them (tests/export).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from export.files import TarStream, read_whole
from export.formats.base import EXTENSIONS, Box, Context, Item

NAME = "webdataset"
ROOT = "webdataset"
TAR_OVERHEAD = 3 * 512 * 2  # three members, header + worst-case padding each
WHOLE_READ_MAX = 16 << 20  # originals up to this size are read in one call; larger ones stream
READ_BATCH = 32  # originals read by one thread task
READ_BATCH_BYTES = 4 << 20
READ_AHEAD = 64 << 20  # bytes read ahead of the shard writer at most


def write(ctx: Context) -> None:
    index = {wnid: i for i, wnid in enumerate(ctx.classes)}
    ctx.folder.write_bytes(f"{ROOT}/classes.txt", "".join(f"{w}\n" for w in ctx.classes).encode())
    max_images = ctx.options["shard_max_images"]
    max_bytes = ctx.options["shard_max_bytes"]
    for split in ("train", "val", "test"):
        shard = _Shards(ctx, split, max_images, max_bytes)
        try:
            for item, image in with_originals(ctx, ctx.items(split=split, order="shuffle")):
                cls = index[item.wnid]
                cls_bytes = b"%d" % cls
                key = f"{item.image_id:012d}"
                if image is not None:
                    # The common case: the original, read in one call, and the sample in one write.
                    meta = sample_json(item, split, cls, item.boxes, item.width, item.height)
                    tar = shard.next(len(image) + len(meta) + len(cls_bytes) + TAR_OVERHEAD)
                    ext = EXTENSIONS.get(item.format, "bin")
                    tar.add_members(((f"{key}.cls", cls_bytes), (f"{key}.{ext}", image), (f"{key}.json", meta)))
                else:
                    with ctx.image(item) as data:
                        meta = sample_json(item, split, cls, data.scale_boxes(item), data.width, data.height)
                        tar = shard.next(data.size + len(meta) + len(cls_bytes) + TAR_OVERHEAD)
                        tar.add_bytes(f"{key}.cls", cls_bytes)
                        tar.add_stream(f"{key}.{data.ext}", data.stream, data.size)
                        tar.add_bytes(f"{key}.json", meta)
                ctx.tick(1)
        finally:
            shard.close()


def _whole(ctx: Context, item: Item) -> bool:
    return ctx.source_path is not None and item.byte_size <= WHOLE_READ_MAX and ctx.keeps_original(item)


def _read(ctx: Context, batch: list[Item]) -> list[bytes | None]:
    return [read_whole(ctx.source_path(i.file), i.byte_size) if _whole(ctx, i) else None for i in batch]


def with_originals(ctx: Context, items: Iterator[Item]) -> Iterator[tuple[Item, bytes | None]]:
    """Each item with its original's bytes when it goes into the shard unchanged from local storage (else
    None: the writer streams it through ``ctx.image``), in order. With ``ctx.io_threads``, batches are read
    ahead on threads (open and read release the GIL) while the shard is written, at most READ_AHEAD bytes
    ahead, so memory stays bounded."""
    if ctx.io_threads <= 0:
        for item in items:
            yield item, _read(ctx, [item])[0]
        return
    window: deque[tuple[list[Item], Future, int]] = deque()
    ahead = 0
    with ThreadPoolExecutor(ctx.io_threads, thread_name_prefix="export-read") as pool:
        batch: list[Item] = []
        size = 0
        for item in itertools.chain(items, [None]):
            if item is not None:
                batch.append(item)
                size += item.byte_size if _whole(ctx, item) else 0
            if batch and (item is None or len(batch) >= READ_BATCH or size >= READ_BATCH_BYTES):
                window.append((batch, pool.submit(_read, ctx, batch), size))
                ahead += size
                batch, size = [], 0
            while window and (item is None or ahead > READ_AHEAD or len(window) > 2 * ctx.io_threads):
                done, future, done_size = window.popleft()
                ahead -= done_size
                yield from zip(done, future.result(), strict=True)


def sample_meta(item: Item, split: str, cls: int, boxes: tuple[Box, ...], width: int, height: int) -> dict:
    """The ``.json`` member of a sample, as a value (sample_json writes exactly ``json_line`` of it)."""
    return {
        "image_id": item.image_id,
        "label": item.wnid,
        "cls": cls,
        "labels": [
            {"wnid": x.wnid, "posterior": x.posterior, "model_version": x.model_version, "direct": x.direct}
            for x in item.labels
        ],
        "boxes": [[b.wnid, b.x1, b.y1, b.x2, b.y2] for b in boxes],
        "width": width,
        "height": height,
        "sha256": item.sha256,
        "split": split,
    }


_string = json.encoder.encode_basestring  # the C encoder json.dumps uses with ensure_ascii=False


def _number(value) -> str:
    if type(value) is int:
        return str(value)
    if value is None:
        return "null"
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Out of range float value in a sample: {value!r}.")
    return repr(value)


def sample_json(item: Item, split: str, cls: int, boxes: tuple[Box, ...], width: int, height: int) -> bytes:
    """``json_line(sample_meta(...))`` (sorted keys, compact, UTF-8, newline), formatted directly: json.dumps
    with sorted keys was a quarter of the per-sample time. tests/export/test_files.py checks the equality."""
    labels = ",".join(
        f'{{"direct":{"true" if x.direct else "false"},"model_version":{_string(x.model_version)},'
        f'"posterior":{_number(x.posterior)},"wnid":{_string(x.wnid)}}}'
        for x in item.labels
    )
    box_list = ",".join(
        f"[{_string(b.wnid)},{_number(b.x1)},{_number(b.y1)},{_number(b.x2)},{_number(b.y2)}]" for b in boxes
    )
    return (
        f'{{"boxes":[{box_list}],"cls":{cls:d},"height":{height:d},"image_id":{item.image_id:d},'
        f'"label":{_string(item.wnid)},"labels":[{labels}],"sha256":{_string(item.sha256)},'
        f'"split":{_string(split)},"width":{width:d}}}\n'
    ).encode()


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
            self._opened = self.ctx.folder.open(f"{ROOT}/{self.split}-{self.number:06d}.tar", background=True)
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
