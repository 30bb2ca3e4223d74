"""Where candidate files come from: a folder, a .zip or .tar(.gz/.bz2/.xz) archive, or a list of URLs.
Each reader yields :class:`Incoming` items (a name and the bytes, or the reason it cannot be read) without
ever writing to disk, so a hostile archive cannot place files anywhere. No Django here.

Refused per member, with a reason: absolute paths and ``..`` (zip slip), symbolic and hard links, device
files and FIFOs, files over the per-file byte limit. Archive bombs are bounded by a member count and a
total of uncompressed bytes: past either limit the rest of the archive is not read and one item says so.
A folder is walked recursively in sorted order; symbolic links are not followed.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from annotation.imaging import Rejected

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass(frozen=True)
class Incoming:
    name: str
    data: bytes | None = None
    rejected: Rejected | None = None
    item_id: int | None = None  # the pending ImportItem this fills (API imports)


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int = 25 * 2**20  # per member
    max_members: int = 100_000
    max_total_bytes: int = 10 * 2**30


def kind_of(path: Path) -> str:
    """'folder', 'zip', 'tar' or 'urls'; ValueError for anything else."""
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if name.endswith(".txt"):
        return "urls"
    raise ValueError(f"{path} is not a folder, a .zip or .tar(.gz) archive, or a .txt file of image URLs.")


def folder_files(root: Path, max_bytes: int) -> Iterator[Incoming]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            name = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                yield Incoming(name, rejected=Rejected("link", "Symbolic links are not followed."))
            elif not stat.S_ISREG(info.st_mode):
                yield Incoming(name, rejected=Rejected("special_file", "Not a regular file."))
            elif info.st_size > max_bytes:
                yield Incoming(name, rejected=_too_large(info.st_size, max_bytes))
            else:
                yield Incoming(name, data=path.read_bytes())


def _too_large(size: int, limit: int) -> Rejected:
    return Rejected("too_large", f"The file has {size:,} bytes; the limit is {limit:,}.")


def unsafe_name(name: str) -> str | None:
    """Why an archive member name is unsafe, or None."""
    if not name or "\x00" in name:
        return "The member has no usable name."
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return "The member has an absolute path; refused (zip slip)."
    if ".." in PurePosixPath(normal).parts:
        return "The member's path contains '..'; refused (zip slip)."
    return None


class _Budget:
    def __init__(self, limits: ArchiveLimits):
        self.limits = limits
        self.members = 0
        self.total = 0

    def exhausted(self) -> Rejected | None:
        if self.members >= self.limits.max_members:
            return Rejected(
                "archive_too_large",
                f"The archive has more than {self.limits.max_members:,} members; the rest was not read.",
            )
        if self.total > self.limits.max_total_bytes:
            return Rejected(
                "archive_too_large",
                f"The archive unpacks to more than {self.limits.max_total_bytes:,} bytes; the rest was not read.",
            )
        return None


def archive_files(path: Path, limits: ArchiveLimits) -> Iterator[Incoming]:
    kind = kind_of(path)
    try:
        if kind == "zip":
            yield from _zip_members(path, limits)
        elif kind == "tar":
            yield from _tar_members(path, limits)
        else:
            raise ValueError(f"{path} is not an archive.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        yield Incoming(path.name, rejected=Rejected("bad_archive", f"The archive is damaged ({error})."))


def _zip_members(path: Path, limits: ArchiveLimits) -> Iterator[Incoming]:
    budget = _Budget(limits)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if stop := budget.exhausted():
                yield Incoming(info.filename, rejected=stop)
                return
            budget.members += 1
            mode = info.external_attr >> 16
            if why := unsafe_name(info.filename):
                yield Incoming(info.filename, rejected=Rejected("unsafe_path", why))
            elif stat.S_ISLNK(mode):
                yield Incoming(info.filename, rejected=Rejected("link", "Links inside archives are refused."))
            elif stat.S_IFMT(mode) not in {0, stat.S_IFREG}:  # many tools store no file type: a file
                yield Incoming(info.filename, rejected=Rejected("special_file", "Not a regular file."))
            elif info.file_size > limits.max_bytes:
                budget.total += info.file_size
                yield Incoming(info.filename, rejected=_too_large(info.file_size, limits.max_bytes))
            else:
                # The header's size may lie: read at most one byte past the limit, whatever it says.
                try:
                    with archive.open(info) as member:
                        data = member.read(limits.max_bytes + 1)
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as error:
                    yield Incoming(info.filename, rejected=Rejected("bad_archive", f"Cannot unpack ({error})."))
                    continue
                budget.total += len(data)
                if len(data) > limits.max_bytes:
                    yield Incoming(info.filename, rejected=_too_large(len(data), limits.max_bytes))
                else:
                    yield Incoming(info.filename, data=data)


def _tar_members(path: Path, limits: ArchiveLimits) -> Iterator[Incoming]:
    budget = _Budget(limits)
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            if member.isdir():
                continue
            if stop := budget.exhausted():
                yield Incoming(member.name, rejected=stop)
                return
            budget.members += 1
            # Skipping a member still decompresses it, so every declared size counts towards the total.
            budget.total += max(member.size, 0)
            if why := unsafe_name(member.name):
                yield Incoming(member.name, rejected=Rejected("unsafe_path", why))
            elif member.issym() or member.islnk():
                yield Incoming(member.name, rejected=Rejected("link", "Links inside archives are refused."))
            elif not member.isfile():
                yield Incoming(member.name, rejected=Rejected("special_file", "Devices and FIFOs are refused."))
            elif member.size > limits.max_bytes:
                yield Incoming(member.name, rejected=_too_large(member.size, limits.max_bytes))
            elif budget.total > limits.max_total_bytes:
                yield Incoming(member.name, rejected=budget.exhausted())
                return
            else:
                handle = archive.extractfile(member)
                yield Incoming(member.name, data=handle.read(limits.max_bytes + 1) if handle else b"")


def url_list(path: Path) -> list[str]:
    """One URL per line; blank lines and lines starting with # are skipped."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
