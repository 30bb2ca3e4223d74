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

On local storage the shards are planned in the build process and written by worker processes
(``_write_planned``, EXPORT_PROCESSES): the same bytes for any number of processes (export/README.md).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from export.files import WHOLE_READ_MAX, TarStream, read_whole, spool_write, tar_member_bytes, write_tar_shard
from export.formats.base import EXTENSIONS, Box, Context, Item

NAME = "webdataset"
ROOT = "webdataset"
TAR_OVERHEAD = 3 * 512 * 2  # three members, header + worst-case padding each
READ_BATCH = 32  # originals read by one thread task
READ_BATCH_BYTES = 4 << 20
READ_AHEAD = 64 << 20  # bytes read ahead of the shard writer at most


def write(ctx: Context) -> None:
    index = {wnid: i for i, wnid in enumerate(ctx.classes)}
    ctx.folder.write_bytes(f"{ROOT}/classes.txt", "".join(f"{w}\n" for w in ctx.classes).encode())
    if ctx.source_path is not None:
        _write_planned(ctx, index)
        return
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


# ---- local storage: shards planned here, written by worker processes ------------------------------------------

PIECE = 500  # samples per spool piece (what a worker loads at once)
PARALLEL_MIN_SAMPLES = 1000  # a smaller shard is written inline: starting a process would cost more


def _write_planned(ctx: Context, index: dict[str, int]) -> None:
    """Local storage: this process reads the rows, formats each sample's JSON and decides the shard
    boundaries (every size is known without reading an image: the stored byte size, or the re-encoded
    bytes), spooling each shard's samples to a temporary file; ``files.write_tar_shard`` then reads the
    originals and writes, hashes each shard — in ``ctx.processes`` worker processes, one shard each, while
    the rows of the next shards are read here. A shard's bytes depend only on its samples, so they are the
    same for any number of processes (and the same as the streaming writer above); the manifest records the
    shards in order."""
    max_images = ctx.options["shard_max_images"]
    max_bytes = ctx.options["shard_max_bytes"]
    with _ShardPool(ctx) as pool:
        for split in ("train", "val", "test"):
            number, count, size, spool, piece = -1, 0, 0, None, []
            for item in ctx.items(split=split, order="shuffle"):
                cls = index[item.wnid]
                cls_bytes = b"%d" % cls
                if ctx.keeps_original(item):
                    path, length, inline = ctx.source_path(item.file), item.byte_size, None
                    ext = EXTENSIONS.get(item.format, "bin")
                    meta = sample_json(item, split, cls, item.boxes, item.width, item.height)
                else:
                    with ctx.image(item) as data:
                        path, inline, ext = None, data.stream.read(), data.ext
                        length = len(inline)
                        meta = sample_json(item, split, cls, data.scale_boxes(item), data.width, data.height)
                # The streaming writer's rule, on the same sizes: a shard closes at max_images samples or
                # before it would pass max_bytes.
                if spool is not None and (
                    count >= max_images or size + length + len(meta) + len(cls_bytes) + TAR_OVERHEAD + 1024 > max_bytes
                ):
                    spool_write(spool, piece)
                    pool.submit(f"{ROOT}/{split}-{number:06d}.tar", spool, count)
                    spool, piece = None, []
                if spool is None:
                    number, count, size = number + 1, 0, 0
                    spool = pool.spool()
                piece.append((f"{item.image_id:012d}", ext, cls_bytes, meta, path, length, inline))
                count += 1
                size += tar_member_bytes(len(cls_bytes)) + tar_member_bytes(length) + tar_member_bytes(len(meta))
                if len(piece) >= PIECE:
                    spool_write(spool, piece)
                    piece = []
                ctx.tick(1)
            if spool is not None:
                spool_write(spool, piece)
                pool.submit(f"{ROOT}/{split}-{number:06d}.tar", spool, count)


class _ShardPool:
    """Shards spooled here and written by worker processes (``python -m export.files``: a fresh interpreter
    that imports no Django, so neither a fork of this process — its threads, its database connection — nor
    a re-import of the caller's main module, as multiprocessing's spawn does) or inline, and recorded in the
    manifest in order. At most ``processes`` run and at most twice that many shards wait, so the spools on
    disk stay bounded; a worker's failure fails the build.

    A spool is an unnamed temporary file, handed to its worker as an open descriptor (``pass_fds``): the
    kernel frees it when the last process holding it ends, however it ends. Named spools
    (``synsight-shard-*.spool``) of a killed build stayed in the temporary folder for ever, where the sweep of
    scratch folders (export_leftovers_remove) does not look."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.processes = ctx.processes
        self._pending: deque[tuple[str, subprocess.Popen | tuple[int, str]]] = deque()
        self._open: list = []

    def __enter__(self) -> _ShardPool:
        return self

    def spool(self):
        spool = tempfile.TemporaryFile(prefix="synsight-shard-", suffix=".spool")  # noqa: SIM115 (closed by submit)
        self._open.append(spool)
        return spool

    def submit(self, name: str, spool, count: int) -> None:
        try:
            spool.flush()
            target = self.ctx.folder.path(name)
            if self.processes > 0 and count >= PARALLEL_MIN_SAMPLES and sys.executable:
                while self._running() >= self.processes:
                    self._collect(len(self._pending) - 1)  # wait for the oldest
                fd = spool.fileno()  # the same number in the worker, which reads it from the start
                mtime = str(self.ctx.mtime)
                command = [sys.executable, "-m", "export.files", "write-tar-shard", target, mtime, str(fd)]
                pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
                worker = subprocess.Popen(command, **pipes, env=_worker_env(), pass_fds=(fd,))
                self._pending.append((name, worker))
            else:
                self._pending.append((name, write_tar_shard(target, self.ctx.mtime, spool.fileno())))
        finally:
            self._open.remove(spool)
            spool.close()  # the worker holds its own descriptor; the file goes when it closes that too
        self._collect(2 * max(self.processes, 1))

    def _running(self) -> int:
        return sum(isinstance(p[1], subprocess.Popen) and p[1].poll() is None for p in self._pending)

    def _collect(self, keep: int) -> None:
        """Record finished shards in order, waiting for the oldest until at most ``keep`` wait."""
        while self._pending:
            name, worker = self._pending[0]
            if isinstance(worker, subprocess.Popen):
                if len(self._pending) <= keep and worker.poll() is None:
                    return
                out, err = worker.communicate()
                if worker.returncode != 0:
                    raise OSError(f"Writing {name} failed: {err.decode(errors='replace').strip()[-2000:]}")
                size, sha256 = out.split()
                worker = (int(size), sha256.decode())
            self._pending.popleft()
            self.ctx.folder.record(name, *worker)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._collect(0)
        finally:
            for _, worker in self._pending:
                if isinstance(worker, subprocess.Popen):
                    worker.kill()
                    worker.communicate()
            for spool in self._open:
                spool.close()


def _worker_env() -> dict[str, str]:
    """This process's environment, with the folder holding the export package first on the worker's path."""
    project = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))}


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
