"""Checking a published version folder against its manifest, and a rebuilt manifest against the published
one. No Django imports: services.dataset_version_verify gives the paths and the recorded hash.

Two questions an admin asks after an upgrade, or when a download looks wrong, answered apart:

* :func:`folder_check` — are the published files the ones the version recorded? ``manifest.json`` against
  the SHA-256 stored on the version row, then every file it lists against its size and SHA-256, and every
  file on disk against the list (an extra file is named too). True of any version, whichever code wrote it.
* :func:`manifests_compare` — which files does a rebuild from the snapshot write differently? Both
  manifests are in write order, so they are read side by side; only the entries that do not line up are
  held, so memory follows the number of differences, not of files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from export.files import UnsafePath, manifest_entries, safe_relative

NAMES_KEPT = 20  # file names kept per kind of difference; the counts are always whole
READ_CHUNK = 1 << 20


@dataclass
class Names:
    """A count and the first NAMES_KEPT names of one kind of difference."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        self.count += 1
        if len(self.first) < NAMES_KEPT:
            self.first.append(name)

    def __bool__(self) -> bool:
        return self.count > 0

    def shown(self) -> str:
        more = self.count - len(self.first)
        return ", ".join(self.first) + (f" and {more:,} more" if more else "")

    def sentence(self, what: str) -> str:
        """'3 files missing: a, b, c.' — ``what`` says what is wrong with them."""
        return f"{self.count:,} file{'s' if self.count != 1 else ''} {what}: {self.shown()}."


@dataclass
class FolderCheck:
    """What :func:`folder_check` found. ``manifest`` is ``ok``, ``missing``, ``changed`` (its SHA-256 is not
    the recorded one), ``unreadable`` (not a manifest; the files could not be checked) or ``no folder`` (the
    version's folder itself is gone)."""

    manifest: str = "ok"
    checked: int = 0  # files listed by the manifest and looked at
    missing: Names = field(default_factory=Names)
    changed: Names = field(default_factory=Names)  # another size or SHA-256 than the manifest lists
    extra: Names = field(default_factory=Names)  # on disk, not in the manifest
    problem: str = ""  # why the manifest could not be read

    @property
    def intact(self) -> bool:
        return self.manifest == "ok" and not (self.missing or self.changed or self.extra)

    def sentences(self) -> list[str]:
        out = []
        if self.manifest == "no folder":
            out.append("The version's folder is missing: no file of it is on disk.")
        elif self.manifest == "missing":
            out.append("manifest.json is missing.")
        elif self.manifest == "changed":
            out.append("manifest.json is not the one recorded when the version was built (its SHA-256 differs).")
        elif self.manifest == "unreadable":
            out.append(f"manifest.json cannot be read as a manifest ({self.problem}), so no file was checked.")
        for names, what in (
            (self.missing, "missing"),
            (self.changed, "changed (size or SHA-256 not the manifest's)"),
            (self.extra, "not in the manifest"),
        ):
            if names:
                out.append(names.sentence(what))
        return out


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files_on_disk(root: Path) -> Iterator[str]:
    """Relative names of every file under ``root`` (symbolic links included, not followed)."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        relative = os.path.relpath(folder, root)
        for name in sorted(names):
            yield name if relative == "." else f"{relative}/{name}".replace(os.sep, "/")


def folder_check(root: Path, manifest_sha256: str, manifest_name: str = "manifest.json") -> FolderCheck:
    """Check the folder ``root`` of a published version against its manifest and the manifest against
    ``manifest_sha256`` (the hash recorded when it was built). Reads every listed file once."""
    result = FolderCheck()
    if not root.is_dir():
        result.manifest = "no folder"
        return result
    manifest = root / manifest_name
    if not manifest.is_file():
        result.manifest = "missing"
        return result
    if file_sha256(str(manifest)) != manifest_sha256:
        result.manifest = "changed"  # its entries are still checked: they say which files were touched
    root_str = str(root.resolve())
    try:
        for entry in manifest_entries(manifest):
            name, size, sha256 = entry["path"], entry["size"], entry.get("sha256")
            try:
                path = f"{root_str}/{safe_relative(name)}"
            except UnsafePath:
                result.changed.add(repr(name))
                continue
            if os.path.islink(path):  # the build writes regular files only
                result.changed.add(name)
                continue
            if not os.path.isfile(path):
                result.missing.add(name)
                continue
            result.checked += 1
            if os.stat(path).st_size != size or (sha256 is not None and file_sha256(path) != sha256):
                result.changed.add(name)
    except (ValueError, KeyError, TypeError, StopIteration) as error:
        result.manifest = "unreadable"
        result.problem = f"{type(error).__name__}: {error}"
        return result
    # Every listed file found is on disk, and names are unique: equal counts mean no extra file. Only when
    # they differ are the listed names held, to name the extras.
    on_disk = sum(1 for _ in _files_on_disk(root)) - 1  # the manifest itself
    if on_disk != result.checked:
        names = {entry["path"] for entry in manifest_entries(manifest)}
        names.add(manifest_name)
        for name in _files_on_disk(root):
            if name not in names:
                result.extra.add(name)
    return result


@dataclass
class ManifestDiff:
    """Files a rebuild writes differently: ``changed`` (in both, another size or SHA-256), ``only_recorded``
    (the published version has them, the rebuild does not), ``only_rebuilt``."""

    changed: Names = field(default_factory=Names)
    only_recorded: Names = field(default_factory=Names)
    only_rebuilt: Names = field(default_factory=Names)

    def __bool__(self) -> bool:
        return bool(self.changed or self.only_recorded or self.only_rebuilt)

    def sentences(self) -> list[str]:
        out = []
        for names, what in (
            (self.changed, "written with other bytes"),
            (self.only_recorded, "in the published version only"),
            (self.only_rebuilt, "in the rebuild only"),
        ):
            if names:
                out.append(names.sentence(what))
        return out


def _entries(path: Path) -> Iterator[tuple[str, int, str | None]]:
    for entry in manifest_entries(path):
        yield entry["path"], entry["size"], entry.get("sha256")


def manifests_compare(recorded: Path, rebuilt: Path) -> ManifestDiff:
    """The files whose entries differ between two manifests. Walked side by side (both are in write order,
    which a rebuild keeps); an entry that does not line up waits in a dict until its partner comes, so a
    reordering costs memory only for the entries it moves."""
    diff = ManifestDiff()
    waiting_recorded: dict[str, tuple] = {}
    waiting_rebuilt: dict[str, tuple] = {}
    for left, right in zip_longest(_entries(recorded), _entries(rebuilt)):
        if left is not None and right is not None and left[0] == right[0]:
            if left[1:] != right[1:]:
                diff.changed.add(left[0])
            continue
        sides = ((left, waiting_recorded, waiting_rebuilt), (right, waiting_rebuilt, waiting_recorded))
        for entry, mine, theirs in sides:
            if entry is None:
                continue
            other = theirs.pop(entry[0], None)
            if other is None:
                mine[entry[0]] = entry[1:]
            elif other != entry[1:]:
                diff.changed.add(entry[0])
    for name in waiting_recorded:
        diff.only_recorded.add(name)
    for name in waiting_rebuilt:
        diff.only_rebuilt.add(name)
    return diff
