"""Writing a version folder safely and reproducibly. No Django imports.

* Every write goes through :class:`VersionFolder`, which accepts only relative names made of safe
  components (letters, digits, ``.``, ``_``, ``-``; no ``..``) and refuses any path that resolves outside the
  folder (symlinks included), so an export never writes outside its folder.
* Every file is hashed while it is written (SHA-256 and size), so the manifest costs no second read.
* Tar members get fixed headers (:func:`tar_header`: given mtime, uid/gid 0, no user names, mode 0644), so
  the same members in the same order give the same bytes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import marshal
import os
import queue
import re
import shutil
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

COPY_CHUNK = 1 << 20
_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
# The same rule for a whole name in one match (a component starts with a letter, digit or underscore, so
# "." and ".." never match): the fast path of safe_relative; the loop below only explains a refusal.
_SAFE_NAME = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}/)*[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# A new file: never an existing path (O_EXCL refuses a symbolic link too), never a terminal symlink.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
# link() errors that mean "not possible here" (another filesystem, no hard links, a link limit): copy instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.ENOSYS}


class UnsafePath(ValueError):
    pass


def safe_relative(name: str) -> str:
    """``name`` if it is a relative POSIX path of safe components, else UnsafePath."""
    if isinstance(name, str) and _SAFE_NAME.fullmatch(name):
        return name
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name:
        raise UnsafePath(f"{name!r} is not a safe relative file name.")
    parts = name.split("/")
    for part in parts:
        if part in {"", ".", ".."} or not _COMPONENT.match(part):
            raise UnsafePath(f"{name!r} is not a safe relative file name (component {part!r}).")
    raise UnsafePath(f"{name!r} is not a safe relative file name.")


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    sha256: str


class _HashingSink:
    """A write-only file that hashes what passes through it. Small writes (a CSV line each) are gathered and
    go to the file and the hash GATHER bytes at a time: written one by one, the file object's 8 KB buffer
    flushed every ~200 lines, and each flush released the GIL to the build's I/O threads and waited to get
    it back (a tenth of the ImageNet layout's time in cProfile). ``write`` takes bytes (kept until then)."""

    GATHER = 1 << 20

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0
        self._parts: list[bytes] = []
        self._gathered = 0

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        self._gathered += len(data)
        self.size += len(data)
        if self._gathered >= self.GATHER:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts) if len(self._parts) > 1 else self._parts[0]
            self._parts.clear()
            self._gathered = 0
            self._raw.write(data)
            self._hash.update(data)

    def finish(self) -> None:
        self._flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _BackgroundSink(_HashingSink):
    """A _HashingSink whose hashing and writing run, in order, on a thread of their own (both release the
    GIL for large buffers), so a writer producing big sequential files (WebDataset shards) overlaps its
    Python work with them. Writes are gathered into chunks of about CHUNK bytes and at most QUEUE chunks
    wait, so memory stays bounded. ``write`` takes bytes (not a buffer that will change)."""

    QUEUE = 16
    CHUNK = 1 << 20  # writes are gathered into chunks of about this size before they are handed over

    def __init__(self, raw: BinaryIO):
        super().__init__(raw)
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._hash.update(data)
                    self._raw.write(data)
                except BaseException as error:  # re-raised in the writer's thread
                    self._error = error

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        if self._buffered >= self.CHUNK:
            self._hand_over()
        return len(data)

    def _hand_over(self) -> None:
        if self._buffer:
            self._queue.put(b"".join(self._buffer))
            self._buffer.clear()
            self._buffered = 0

    def finish(self) -> None:
        self._hand_over()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class _OpenFile:
    def __init__(self, folder: VersionFolder, name: str, target: str, background: bool = False):
        self._folder, self._name, self._target, self._background = folder, name, target, background

    def __enter__(self) -> _HashingSink:
        try:
            self._raw = open(self._target, "xb")  # never overwrite: a name is written once per build
        except FileExistsError:
            if os.path.islink(self._target):
                raise UnsafePath(f"{self._name!r} is a symbolic link.") from None
            raise
        self._sink = _BackgroundSink(self._raw) if self._background else _HashingSink(self._raw)
        return self._sink

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._sink.finish()
        finally:
            self._raw.close()
        if exc_type is None:
            self._folder._record(self._name, self._sink.size, self._sink.hexdigest())


class VersionFolder:
    """The folder one build writes into. Every file written is recorded (path, size, SHA-256) in a spool
    file outside the folder, one JSON line each in write order, so the manifest costs no memory however
    many files there are (and write order is deterministic: the writers follow the snapshot's order)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._root_str = str(self.root)
        self._made: set[str] = {""}
        self._link_ok = True
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self._batch: list[tuple] = []
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the folder object)
        self._lines: list[str] = []
        self.file_count = 0
        self.total_bytes = 0

    SPOOL_LINES = 8192  # manifest lines gathered (~1 MB) before one write to the spool

    def _record(self, name: str, size: int, sha256: str) -> None:
        # The canonical compact JSON of {"path", "sha256", "size"}, formatted directly: a safe name and a hex
        # digest need no escaping (json.dumps cost a tenth of the per-file time). Gathered and written to the
        # spool SPOOL_LINES at a time: a write per file flushed the file object's 8 KB buffer every ~100
        # files, and each flush released the GIL to the I/O threads and waited to get it back (a third of
        # the ImageNet layout's time in cProfile, with 4 threads linking).
        self._lines.append(f'{{"path":"{name}","sha256":"{sha256}","size":{size:d}}}\n')
        self.file_count += 1
        self.total_bytes += size
        if len(self._lines) >= self.SPOOL_LINES:
            self._flush_lines()

    def _flush_lines(self) -> None:
        if self._lines:
            self._spool.write("".join(self._lines).encode())
            self._lines.clear()

    @contextmanager
    def parallel(self, threads: int) -> Iterator[None]:
        """Inside: ``write_bytes`` and ``add_original`` do their system calls (create, write, link, copy) on
        ``threads`` threads, which release the GIL in them, while the caller goes on; the manifest is still
        recorded in call order, so the bytes of every file and of the manifest do not change. At most
        PENDING operations wait (bounded memory); the first failure is raised by a later call or on leaving.
        Directories are made by the caller's thread, in order."""
        if threads <= 0 or self._pool is not None:
            yield
            return
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="export-io")
        try:
            yield
            self._drain(0)
        finally:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)
            self._pending.clear()
            self._batch = []

    BATCH = 64  # operations handed to a thread at once (one future per operation cost as much as a link)
    PENDING = 64  # batches in flight at most

    def _submit(self, function, *args) -> None:
        if self._pool is None:
            function(*args)
            return
        self._batch.append((function, args))
        if len(self._batch) >= self.BATCH:
            self._drain(self.PENDING)

    def _drain(self, keep: int) -> None:
        """Hand over the open batch (if full, or when waiting for everything), then collect finished
        batches, raising the first failure, until at most ``keep`` are in flight."""
        if self._batch and (keep == 0 or len(self._batch) >= self.BATCH) and self._pool is not None:
            operations, self._batch = self._batch, []
            self._pending.append(self._pool.submit(_run_all, operations))
        while len(self._pending) > keep or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def records(self) -> Iterator[FileRecord]:
        self._drain(0)
        self._flush_lines()
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            entry = json.loads(line)
            yield FileRecord(entry["path"], entry["size"], entry["sha256"])
        self._spool.seek(0, os.SEEK_END)

    def record(self, name: str, size: int, sha256: str) -> None:
        """Record a file written at ``path(name)`` by someone else (a WebDataset shard written by a worker
        process): recorded in call order, like every other write."""
        self._record(name, size, sha256)

    def path(self, name: str) -> str:
        """The absolute path for a relative ``name``; UnsafePath for anything that could escape."""
        safe_relative(name)
        parent, _, _ = name.rpartition("/")
        if parent not in self._made:
            folder = self.root / parent
            folder.mkdir(parents=True, exist_ok=True)
            if not folder.resolve().is_relative_to(self.root):  # a symlinked folder pointing outside
                raise UnsafePath(f"{name!r} resolves outside the version folder.")
            self._made.add(parent)
        # No symlink check needed for the file itself: it is opened with O_CREAT|O_EXCL ("xb"), which
        # refuses any existing path, a symbolic link included.
        return f"{self._root_str}/{name}"

    def open(self, name: str, *, background: bool = False) -> _OpenFile:
        """``with folder.open("a/b.txt") as out: out.write(b"...")`` — hashed, recorded, never overwritten.
        ``background``: hashed and written on a thread of its own (large sequential files)."""
        return _OpenFile(self, name, self.path(name), background)

    def _create(self, name: str, target: str) -> int:
        try:
            return os.open(target, _CREATE, 0o644)
        except OSError:
            if os.path.islink(target):
                raise UnsafePath(f"{name!r} is a symbolic link.") from None
            raise

    def write_bytes(self, name: str, data: bytes) -> None:
        """A small file in one system call (no buffered file object), hashed and recorded."""
        target = self.path(name)
        self._submit(self._write_new, name, target, data)
        self._record(name, len(data), hashlib.sha256(data).hexdigest())

    def _write_new(self, name: str, target: str, data: bytes) -> None:
        fd = self._create(name, target)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def add_original(self, name: str, source: str, size: int, sha256: str, *, link: bool = True) -> None:
        """Place a stored original, unchanged, at ``name``: a hard link when ``link`` and the filesystem
        allow (no bytes copied), else a kernel-side copy (copy_file_range / sendfile). The manifest takes the
        original's known ``size`` and ``sha256`` (content-addressed storage: its key is the hash of these
        bytes) instead of reading the bytes again; the size is checked (a mismatch raises OSError and
        leaves no file)."""
        target = self.path(name)
        self._submit(self._place, name, source, target, size, link)
        self._record(name, size, sha256)

    def _place(self, name: str, source: str, target: str, size: int, link: bool) -> None:
        if link and self._link_ok:
            try:
                os.link(source, target)
            except FileExistsError:
                if os.path.islink(target):
                    raise UnsafePath(f"{name!r} is a symbolic link.") from None
                raise
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                self._link_ok = False  # the same for every file of this build: stop trying
            else:
                actual = os.stat(target).st_size
                if actual != size:
                    os.unlink(target)
                    raise OSError(f"{source}: {actual} bytes, recorded as {size}.")
                return
        src = os.open(source, _READ)
        try:
            dst = self._create(name, target)
            try:
                copied = _copy_fd(src, dst, size + 1)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        if copied != size:
            os.unlink(target)
            raise OSError(f"{source}: {copied} bytes, recorded as {size}.")

    def write_json(self, name: str, value) -> None:
        self.write_bytes(name, json_bytes(value))

    def copy_stream(self, name: str, source: BinaryIO) -> None:
        with self.open(name) as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)

    def write_manifest(self, name: str = "manifest.json") -> dict:
        """Write the manifest of every file so far (not itself), streamed from the spool: canonical JSON
        with one file per line, in write order. Returns its head (algorithm, file_count, total_bytes)."""
        head = {"algorithm": "sha256", "file_count": self.file_count, "total_bytes": self.total_bytes}
        self._drain(0)
        self._flush_lines()
        self._spool.flush()
        self._spool.seek(0)
        with self.open(name) as out:
            out.write(f'{_compact(head)[:-1]},"files":['.encode())
            separator = b"\n"
            for line in self._spool:
                out.write(separator + line.rstrip(b"\n"))
                separator = b",\n"
            out.write(b"\n]}\n")
        return head


# ---- scratch folders: held while written, removable when nobody holds them ---------------------------------


@contextmanager
def scratch_held(path: Path) -> Iterator[None]:
    """Create the folder ``path`` and hold an exclusive ``flock`` on it while the block runs: a build or a
    verify writing into it. The kernel drops the lock when the process ends however it ends (killed, the
    machine rebooted), so a folder nobody holds is one nobody will finish (``scratch_remove_unless_held``)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def scratch_remove_unless_held(path: Path) -> bool:
    """Remove the scratch folder ``path`` unless a live process holds it (``scratch_held``); True if removed.
    The lock is taken without waiting and kept during the removal, so its owner cannot be mid-way."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        shutil.rmtree(path)
    finally:
        os.close(fd)
    return True


def _run_all(operations: list[tuple]) -> None:
    for function, args in operations:
        function(*args)


def _copy_fd(src: int, dst: int, limit: int) -> int:
    """Copy up to ``limit`` bytes from ``src`` to ``dst`` in the kernel; the number of bytes copied."""
    copied = 0
    try:
        while copied < limit and (n := os.copy_file_range(src, dst, limit - copied)):
            copied += n
    except OSError as error:  # not supported between these filesystems: sendfile, which always works here
        if error.errno not in {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP} or copied:
            raise
        while copied < limit and (n := os.sendfile(dst, src, None, limit - copied)):
            copied += n
    return copied


def read_whole(path: str, size: int) -> bytes:
    """The ``size`` bytes of a file in one read; OSError if it holds another number of bytes."""
    fd = os.open(path, _READ)
    try:
        # A regular file's read returns less than asked only at its end: one call when the size is right.
        data = os.read(fd, size + 1)
        while len(data) < size and (more := os.read(fd, size + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(f"{path}: {len(data)} bytes, recorded as {size}.")
    return data


def manifest_entries(path: Path) -> Iterator[dict]:
    """The file entries of a manifest written by write_manifest, one line at a time."""
    with open(path, "rb") as manifest:
        next(manifest)
        for line in manifest:
            if line.startswith(b"]"):
                return
            yield json.loads(line.rstrip(b"\n").rstrip(b","))


def json_bytes(value) -> bytes:
    """Canonical JSON: sorted keys, no NaN, UTF-8, a final newline."""
    return (json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=1) + "\n").encode()


def _compact(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_line(value) -> bytes:
    return (
        json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
    ).encode()


# ---- deterministic tar ----------------------------------------------------------------------------------

BLOCK = tarfile.BLOCKSIZE  # 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


def _tarfile_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


# The constant parts of a ustar header as tarfile writes it for our members: mode 0644, uid/gid 0, regular
# file, "ustar\0" "00", no user or group names, no device numbers.
_MODE_IDS = b"0000644\0" + b"0000000\0" * 2
_AFTER_CHKSUM = b"0" + b"\0" * 100 + b"ustar\x0000" + b"\0" * 64 + b"\0" * 16 + b"\0" * 167
_CONSTANT_SUM = sum(_AFTER_CHKSUM) + 8 * 32  # the checksum field counts as eight spaces
_MAX_OCTAL_SIZE = 8**11 - 1
_MODE_IDS_SUM = sum(_MODE_IDS)


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """A member header that depends only on (name, size, mtime): uid/gid 0, empty user and group names,
    mode 0644 — the bytes tarfile writes in PAX format (plain ustar unless a name is longer than 100 bytes
    or not ASCII, when tarfile's own writer adds the PAX record). Built directly for the common case:
    tarfile's general writer cost half the time of a WebDataset export."""
    encoded = name.encode("ascii", "replace")
    if len(encoded) > 100 or not name.isascii() or size > _MAX_OCTAL_SIZE or not 0 <= mtime < 8**11:
        return _tarfile_header(name, size, mtime)
    fields = b"%011o\0%011o\0" % (size, mtime)
    checksum = sum(encoded) + sum(fields) + _CONSTANT_SUM + _MODE_IDS_SUM  # the NUL padding adds nothing
    return encoded.ljust(100, b"\0") + _MODE_IDS + fields + b"%06o\0 " % checksum + _AFTER_CHKSUM


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class TarStream:
    """Appends members to a writable binary file, streaming each member's content (never holding it)."""

    def __init__(self, out, mtime: int):
        self.out, self.mtime, self.size = out, mtime, 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.size += len(data)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._write(tar_header(name, len(data), self.mtime) + data + tar_padding(len(data)))

    def add_members(self, members: Iterable[tuple[str, bytes]]) -> None:
        """Several small members in one write (a WebDataset sample)."""
        parts: list[bytes] = []
        for name, data in members:
            parts += (tar_header(name, len(data), self.mtime), data, tar_padding(len(data)))
        self._write(b"".join(parts))

    def add_stream(self, name: str, source: BinaryIO, size: int) -> None:
        self._write(tar_header(name, size, self.mtime))
        copied = 0
        while chunk := source.read(COPY_CHUNK):
            copied += len(chunk)
            if copied > size:
                raise OSError(f"{name}: the source grew beyond its recorded size of {size} bytes.")
            self._write(chunk)
        if copied != size:
            raise OSError(f"{name}: read {copied} bytes, expected {size}.")
        self._write(tar_padding(size))

    def close(self) -> None:
        self._write(END_OF_ARCHIVE)


# ---- WebDataset shards written from a spool (in worker processes) ------------------------------------------

WHOLE_READ_MAX = 16 << 20  # originals up to this size are read in one call; larger ones stream


def spool_write(spool: BinaryIO, samples: list[tuple]) -> None:
    """Append a piece of samples to a shard's spool: each ``(key, ext, cls, meta, path, size, inline)``
    (the ``.cls`` and ``.json`` bytes; the original's path and size, or the re-encoded bytes ``inline``),
    as its length (8 bytes) and its marshal bytes, which the worker reads in one call: ``marshal.load`` on a
    file reads every object with a call of its own (15 µs a sample, a tenth of a shard writer's time)."""
    data = marshal.dumps(samples)
    spool.write(len(data).to_bytes(8, "little") + data)


def _spool_pieces(spool: BinaryIO) -> Iterator[list[tuple]]:
    """The pieces of a spool written by spool_write; OSError for anything else (a length beyond the file's
    end is refused before any memory is asked for it)."""
    left = os.fstat(spool.fileno()).st_size
    while head := spool.read(8):
        length = int.from_bytes(head, "little")
        if len(head) != 8 or length > left - 8:
            raise OSError("Not a shard spool, or one that ends in the middle of a piece.")
        left -= 8 + length
        yield marshal.loads(spool.read(length))


def write_tar_shard(target: str, mtime: int, spool: str | int) -> tuple[int, str]:
    """Write the tar of the samples listed in the file ``spool`` (pieces from ``spool_write``; a path, or an open
    file descriptor, read from its start and left open) at ``target``,
    a new file (``O_EXCL``, no symlink followed), and return its size and SHA-256. Each sample is the members
    ``<key>.cls``, ``<key>.<ext>``, ``<key>.json`` with the headers of :func:`tar_header`: the bytes depend
    only on the spool, whichever process runs this. Runs in a worker process (no Django here), one thread:
    the original is read in one call (streamed above WHOLE_READ_MAX), the parts of about SHARD_CHUNK bytes
    of samples are joined once, hashed and written (a thread for hashing and writing, and a join per sample,
    cost more CPU than they saved once several shards are written at the same time)."""
    try:
        fd = os.open(target, _CREATE, 0o644)
    except OSError:
        if os.path.islink(target):
            raise UnsafePath(f"{target!r} is a symbolic link.") from None
        raise
    digest = hashlib.sha256()
    total = 0
    parts: list[bytes] = []
    buffered = 0
    headers = _SampleHeaders(mtime)

    def flush() -> None:
        nonlocal total, buffered
        data = b"".join(parts)
        parts.clear()
        buffered = 0
        digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        total += len(data)

    try:
        with open(spool, "rb", closefd=not isinstance(spool, int)) as pieces:
            pieces.seek(0)
            for piece in _spool_pieces(pieces):
                for key, ext, cls, meta, path, size, inline in piece:
                    image = inline
                    if image is None and size <= WHOLE_READ_MAX:
                        image = read_whole(path, size)
                    cls_header, image_header, meta_header = headers.sample(key, ext, len(cls), size, len(meta))
                    parts += (cls_header, cls, _PADDING[-len(cls) % BLOCK], image_header)
                    if image is None:  # a large original: streamed in chunks
                        flush()
                        with open(path, "rb") as source:
                            copied = 0
                            while chunk := source.read(COPY_CHUNK):
                                copied += len(chunk)
                                if copied > size:
                                    raise OSError(f"{path}: the source grew beyond its recorded size of {size} bytes.")
                                parts.append(chunk)
                                flush()
                        if copied != size:
                            raise OSError(f"{path}: read {copied} bytes, expected {size}.")
                    else:
                        parts.append(image)
                    parts += (_PADDING[-size % BLOCK], meta_header, meta, _PADDING[-len(meta) % BLOCK])
                    buffered += size + len(meta) + 4 * BLOCK
                    if buffered >= SHARD_CHUNK:
                        flush()
        parts.append(END_OF_ARCHIVE)
        flush()
    finally:
        os.close(fd)
    return total, digest.hexdigest()


SHARD_CHUNK = 256 << 10  # bytes of samples joined, hashed and written at once by write_tar_shard
_PADDING = [b"\0" * n for n in range(BLOCK)]


class _SampleHeaders:
    """The three member headers of a WebDataset sample, equal to :func:`tar_header`'s, with the parts that
    do not change within a shard (the mtime field, the constant fields' checksum) and within a sample (the
    key's byte sum) computed once: three tar_header calls were a fifth of a shard writer's time."""

    def __init__(self, mtime: int):
        self.mtime = mtime
        self.ok = 0 <= mtime < 8**11
        self._mtime_field = b"%011o\0" % mtime if self.ok else b""
        self._base = _CONSTANT_SUM + _MODE_IDS_SUM + sum(self._mtime_field)
        self._ext_sums: dict[str, int] = {}

    def _header(self, name: bytes, name_sum: int, size: int) -> bytes:
        size_field = b"%011o\0" % size
        checksum = name_sum + sum(size_field) + self._base
        return (
            name.ljust(100, b"\0") + _MODE_IDS + size_field + self._mtime_field + b"%06o\0 " % checksum + _AFTER_CHKSUM
        )

    def sample(self, key: str, ext: str, cls_size: int, size: int, meta_size: int) -> tuple[bytes, bytes, bytes]:
        if not (self.ok and key.isascii() and ext.isascii() and len(key) + len(ext) < 95 and size <= _MAX_OCTAL_SIZE):
            return (
                tar_header(f"{key}.cls", cls_size, self.mtime),
                tar_header(f"{key}.{ext}", size, self.mtime),
                tar_header(f"{key}.json", meta_size, self.mtime),
            )
        k = key.encode()
        k_sum = sum(k)
        ext_sum = self._ext_sums.get(ext)
        if ext_sum is None:
            ext_sum = self._ext_sums[ext] = sum(b"." + ext.encode())
        return (
            self._header(k + b".cls", k_sum + _CLS_SUM, cls_size),
            self._header(k + b"." + ext.encode(), k_sum + ext_sum, size),
            self._header(k + b".json", k_sum + _JSON_SUM, meta_size),
        )


_CLS_SUM = sum(b".cls")
_JSON_SUM = sum(b".json")


def tar_member_bytes(size: int, name: str | None = None, mtime: int = 0) -> int:
    """Bytes a member of ``size`` bytes takes in a tar: its header (one block, or tar_header's length for
    ``name`` and ``mtime``: more for a long or non-ASCII name) and its content padded to a block."""
    header = BLOCK if name is None else len(tar_header(name, size, mtime))
    return header + size + (-size % BLOCK)


def tar_chunks(
    root: Path,
    members: Iterable[tuple[str, int]],
    mtime: int,
    prefix: str = "",
    start: int = 0,
    stop: int | None = None,
) -> Iterator[bytes]:
    """A tar of ``root``'s files ``members`` ((name, size) in that order; the sizes are what the archive's
    length was computed from) as a stream of chunks, for an HTTP response: its bytes ``start`` to ``stop``
    (exclusive; None: to the end), for a ranged download. Members wholly before ``start`` are not opened; in
    the one that holds it the file is read from the right offset. Each name is checked like a write: nothing
    outside ``root`` is ever read."""
    root = root.resolve()
    position = 0  # the archive offset of the next part

    def part(data: bytes) -> Iterator[bytes]:
        nonlocal position
        begin, end = position, position + len(data)
        position = end
        if end > start and (stop is None or begin < stop):
            yield data[max(start - begin, 0) : len(data) if stop is None else min(len(data), stop - begin)]

    for name, size in members:
        if stop is not None and position >= stop:
            return
        header = tar_header(prefix + name, size, mtime)
        if position + len(header) + size + len(tar_padding(size)) <= start:
            position += len(header) + size + len(tar_padding(size))
            continue
        path = root / safe_relative(name)
        if not path.resolve().is_relative_to(root):
            raise UnsafePath(f"{name!r} resolves outside the version folder.")
        if (on_disk := os.stat(path).st_size) != size:  # the length sent was computed from the listing
            raise OSError(f"{name!r} is {on_disk} bytes on disk, not the {size} the version's manifest lists.")
        yield from part(header)
        content = position
        first = min(max(start - content, 0), size)
        last = size if stop is None else min(size, max(stop - content, 0))
        if first < last:
            with open(path, "rb") as source:
                source.seek(first)
                remaining = last - first
                while remaining and (chunk := source.read(min(COPY_CHUNK, remaining))):
                    remaining -= len(chunk)
                    yield chunk
        position = content + size
        yield from part(tar_padding(size))
    yield from part(END_OF_ARCHIVE)


def main(argv: list[str]) -> None:
    """``python -m export.files write-tar-shard TARGET MTIME SPOOL_FD``: the worker process of the WebDataset
    writer (export/formats/webdataset.py), given its unnamed spool as an open file descriptor; prints the
    shard's size and SHA-256."""
    command, target, mtime, spool = argv
    if command != "write-tar-shard":
        raise SystemExit(f"unknown command {command!r}")
    size, sha256 = write_tar_shard(target, int(mtime), int(spool))
    print(size, sha256)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
