"""Provision NLTK's WordNet 3.0 corpus into the project's data folder.

Order: an existing loadable copy; NLTK's downloader; Debian's WordNet packages arranged into NLTK's
layout. Pure module (stdlib + nltk, no Django) so setup can run it before Django is configured:

    python -m taxonomy.wordnet_data --nltk-data data/nltk_data
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import nltk

DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_LEXNAMES_MANPAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
# wordnet-base holds the database; NLTK's reader also opens index.sense (it maps sense keys on load),
# which Debian ships separately in wordnet-sense-index, built from the same WordNet 3.0 source.
APT_PACKAGES = ("wordnet-base", "wordnet-sense-index")
# Everything WordNetCorpusReader opens, except lexnames, which no Debian package ships.
SOURCE_FILES = (
    "cntlist.rev",
    "index.sense",
    *(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")),
    *(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")),
)
LEXNAMES_COUNT = 45  # WordNet 3.0 has 45 lexicographer files, numbered 00..44.
LOCK_FILE = ".wordnet.lock"  # in the NLTK data folder: runs provisioning the same folder take turns on it
DOWNLOAD_TIMEOUT = 10.0  # seconds; offline machines must fall through to apt quickly.

Log = Callable[[str], object]


class WordNetUnavailable(RuntimeError):
    """No source worked; the message says what to do."""


def parse_lexnames_manpage(text: str) -> list[tuple[int, str, int]]:
    """(number, lexicographer file, syntactic category) rows from the groff source of lexnames(5WN).

    The category numbers come from the page's own "Syntactic Category" table (1 NOUN ... 4 ADVERB) and
    are matched to each file name's prefix (noun., verb., adj., adv.).
    """
    categories = {name: int(num) for num, name in re.findall(r"^\\fB(\d)\\fP\t([A-Z]+)\s*$", text, re.MULTILINE)}
    rows = []
    for num, name in re.findall(r"^(\d\d)\t([a-z]+\.\w+)\s*\t", text, re.MULTILINE):
        prefix = name.split(".")[0].upper()
        matches = [cat for cat_name, cat in categories.items() if cat_name.startswith(prefix)]
        if len(matches) != 1:
            raise ValueError(f"lexnames(5WN): no unique syntactic category for {name!r}")
        rows.append((int(num), name, matches[0]))
    if not rows or [num for num, _, _ in rows] != list(range(len(rows))):
        raise ValueError("lexnames(5WN): file numbers are not a contiguous 00..NN list")
    return rows


def format_lexnames(rows: list[tuple[int, str, int]]) -> str:
    """NLTK's lexnames file: 'NN<TAB>name<TAB>category' lines."""
    return "".join(f"{num:02d}\t{name}\t{cat}\n" for num, name, cat in rows)


def ensure_wordnet(
    nltk_data_dir: Path,
    *,
    allow_download: bool = True,
    allow_apt: bool = True,
    source_dir: Path = DEBIAN_WORDNET,
    lexnames_manpage: Path | None = None,
    log: Log = print,
) -> Path:
    """Make WordNet 3.0 loadable from ``nltk_data_dir`` and return the corpus location.

    Puts ``nltk_data_dir`` first on ``nltk.data.path``: NLTK (3.9+) refuses to read corpora outside
    its data path, so callers need that anyway. Runs on the same folder at once take turns (a file lock in it).
    Raises WordNetUnavailable with instructions.
    """
    nltk_data_dir = Path(nltk_data_dir).resolve()
    if str(nltk_data_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data_dir))
    # A ready folder (every run but the first; a shared read-only copy) is only read: no lock file is written.
    # A copy found usable is never removed, and one being placed appears whole (a rename), so this needs no lock.
    if (found := _find_usable(nltk_data_dir)) is not None:
        log(f"WordNet: already present at {found}")
        return found
    with _one_run_at_a_time(nltk_data_dir, log):
        return _provision(nltk_data_dir, allow_download, allow_apt, source_dir, lexnames_manpage, log)


@contextmanager
def _one_run_at_a_time(nltk_data_dir: Path, log: Log) -> Iterator[None]:
    """Hold an exclusive flock on <nltk_data_dir>/.wordnet.lock from the "already present?" check to the end.

    `make demo` and `make test` started at once both provision the same folder: unlocked, one run's rmtree of a
    copy it took for broken (or its rename) hit the corpus the other had just placed and was verifying, and both
    NLTK downloaders wrote the same files. The second run now waits, then finds the copy present. flock, not a
    lock file created with O_EXCL: the kernel releases it when its process ends, however it ends, so a killed
    run leaves nothing to clean up.
    """
    try:
        nltk_data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(nltk_data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a folder we cannot write (a shared read-only copy): no run can change it, none to wait for
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"WordNet: another run is provisioning {nltk_data_dir}; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _provision(
    nltk_data_dir: Path,
    allow_download: bool,
    allow_apt: bool,
    source_dir: Path,
    lexnames_manpage: Path | None,
    log: Log,
) -> Path:
    """Under the lock: a run we waited for may have placed the copy."""
    if (found := _find_usable(nltk_data_dir)) is not None:
        log(f"WordNet: already present at {found}")
        return found

    if allow_download and _download(nltk_data_dir, log) and (found := _find_usable(nltk_data_dir)):
        log(f"WordNet: downloaded by NLTK to {found}")
        return found

    missing = _missing(source_dir)
    if missing and allow_apt:
        _apt_install(log)
        missing = _missing(source_dir)
    if missing:
        raise WordNetUnavailable(_instructions(nltk_data_dir, source_dir, missing))

    corpus = _arrange(source_dir, nltk_data_dir, _lexnames_text(lexnames_manpage, allow_apt, log))
    _verify_with_nltk(corpus)
    log(f"WordNet: arranged from {source_dir} into {corpus}")
    return corpus


def corpus_pointers(nltk_data_dir: Path | None = None) -> Iterator[nltk.data.PathPointer]:
    """NLTK's pointers to the WordNet corpora under ``nltk_data_dir`` (None: NLTK's whole data path): the folder,
    then the zip NLTK's downloader may leave (``corpora/wordnet.zip``), as NLTK's LazyCorpusLoader looks."""
    paths = None if nltk_data_dir is None else [str(nltk_data_dir)]
    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            yield nltk.data.find(resource, paths=paths)
        except LookupError:
            continue


def _find_usable(nltk_data_dir: Path) -> Path | None:
    """The corpus (directory or NLTK's zip) if it holds a plausible WordNet 3.0, else None.

    A cheap check (files present, 45 lexnames, dog.n.01 at its 3.0 offset) instead of constructing
    NLTK's reader, which takes seconds: this runs on every setup.
    """
    for pointer in corpus_pointers(nltk_data_dir):
        try:
            for name in SOURCE_FILES:
                pointer.join(name)  # raises if missing
            with pointer.join("lexnames").open() as fp:
                lexnames_ok = len(fp.read().splitlines()) == LEXNAMES_COUNT
            with pointer.join("data.noun").open() as fp:
                fp.seek(2084071)
                dog_ok = fp.read(64).startswith(b"02084071 05 n 03 dog 0 domestic_dog")
        except (LookupError, OSError, ValueError):
            continue
        if lexnames_ok and dog_ok:
            return Path(pointer.zipfile.filename) if hasattr(pointer, "zipfile") else Path(pointer.path)
    return None


def _download(nltk_data_dir: Path, log: Log) -> bool:
    """NLTK's downloader with a short timeout; it usually returns False rather than raising."""
    nltk_data_dir.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    output = io.StringIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its warnings repeat the error it reports
            ok = bool(nltk.download("wordnet", download_dir=str(nltk_data_dir), quiet=True, print_error_to=output))
    except Exception as exc:  # network, permission and parse errors all mean "try the next source"
        ok, output = False, io.StringIO(str(exc))
    finally:
        socket.setdefaulttimeout(previous)
    if not ok:
        reason = " ".join(output.getvalue().replace("[nltk_data]", "").split())[:200]
        log(f"WordNet: NLTK downloader failed ({reason or 'no reason given'}); trying Debian packages")
    return ok


def _missing(source_dir: Path) -> list[str]:
    return [name for name in SOURCE_FILES if not (source_dir / name).is_file()]


def _apt_install(log: Log) -> None:
    """apt-get install the Debian packages when we can (root + apt-get); failures are left to the caller."""
    if not shutil.which("apt-get") or getattr(os, "geteuid", lambda: -1)() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]  # a concurrent apt/dpkg run is not a failure
    install = ["apt-get", "install", "-y", "-q", *wait_for_lock, *APT_PACKAGES]
    log(f"WordNet: {' '.join(install)}")
    result = subprocess.run(install, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        # Fresh containers have no package lists ("Unable to locate package"); stale ones give 404s.
        log("WordNet: install failed; running apt-get update and retrying")
        subprocess.run(["apt-get", "update", "-q", *wait_for_lock], capture_output=True, env=env)
        result = subprocess.run(install, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        log(f"WordNet: apt-get failed: {result.stderr.strip()[-500:]}")


def _lexnames_text(manpage: Path | None, allow_apt: bool, log: Log) -> str:
    """NLTK's lexnames file, generated from the lexnames(5WN) manual page of wordnet-base."""
    raw = manpage.read_bytes() if manpage else _installed_manpage() or _manpage_from_deb(allow_apt, log)
    if not raw:
        raise WordNetUnavailable(
            "WordNet: the lexnames(5WN) manual page of wordnet-base was not found, so NLTK's 'lexnames' "
            "file cannot be written. Reinstall it with man pages enabled: apt-get install --reinstall "
            "wordnet-base (see path-exclude in /etc/dpkg/dpkg.cfg.d/)."
        )
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8", "replace")
    rows = parse_lexnames_manpage(text)
    if len(rows) != LEXNAMES_COUNT:
        raise WordNetUnavailable(f"WordNet: lexnames(5WN) lists {len(rows)} lexicographer files, not 45")
    return format_lexnames(rows)


def _installed_manpage() -> bytes | None:
    try:
        listing = subprocess.run(["dpkg", "-L", "wordnet-base"], capture_output=True, text=True).stdout
    except OSError:  # not a Debian system
        listing = ""
    candidates = [Path(line) for line in listing.splitlines() if "/lexnames." in line]
    page = next((p for p in [*candidates, DEBIAN_LEXNAMES_MANPAGE] if p.is_file()), None)
    return page.read_bytes() if page else None


def _manpage_from_deb(allow_apt: bool, log: Log) -> bytes | None:
    """Slim Debian images drop /usr/share/man at install time; the .deb itself still has the page."""
    if not allow_apt or not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return None
    log("WordNet: lexnames(5WN) is not installed; extracting it from the wordnet-base .deb")
    with tempfile.TemporaryDirectory(prefix="wordnet-deb-") as tmp:
        subprocess.run(["apt-get", "download", "-q", "wordnet-base"], cwd=tmp, capture_output=True)
        for deb in Path(tmp).glob("wordnet-base_*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/root"], capture_output=True)
        page = Path(tmp, "root", *DEBIAN_LEXNAMES_MANPAGE.parts[1:])
        return page.read_bytes() if page.is_file() else None


def _arrange(source_dir: Path, nltk_data_dir: Path, lexnames: str) -> Path:
    """Copy the database into <nltk_data_dir>/corpora/wordnet, built aside then renamed into place.

    Copies, not symlinks: NLTK resolves symlinks and refuses files outside its data path.
    """
    corpora = nltk_data_dir / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=corpora))
    try:
        for name in SOURCE_FILES:
            shutil.copy2(source_dir / name, staging / name)
        (staging / "lexnames").write_text(lexnames, encoding="ascii")
        staging.chmod(0o755)
        corpus = corpora / "wordnet"
        if corpus.exists():  # an incomplete or broken earlier copy: _find_usable rejected it
            shutil.rmtree(corpus)
        staging.rename(corpus)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return corpus


def _verify_with_nltk(corpus: Path) -> None:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": no OMW, by design
        reader = WordNetCorpusReader(str(corpus), None)
    if reader.synset_from_pos_and_offset("n", 2084071).name() != "dog.n.01":
        shutil.rmtree(corpus)  # so the next run does not take it for a good copy
        raise WordNetUnavailable(f"WordNet: {corpus} does not load as WordNet 3.0")


def _instructions(nltk_data_dir: Path, source_dir: Path, missing: list[str]) -> str:
    packages = " ".join(APT_PACKAGES)
    return (
        f"WordNet 3.0 is not available: NLTK's downloader could not fetch it and {source_dir} lacks "
        f"{', '.join(missing)}.\n"
        "Do one of the following, then run setup again:\n"
        f"  - as root (or with sudo): apt-get update && apt-get install -y {packages}\n"
        '  - with internet access: python -c "import nltk; '
        f"nltk.download('wordnet', download_dir='{nltk_data_dir}')\"\n"
        f"  - copy an NLTK WordNet 3.0 corpus (the folder holding data.noun, index.sense, lexnames, ...) "
        f"to {nltk_data_dir / 'corpora' / 'wordnet'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nltk-data", type=Path, required=True, help="NLTK data folder to fill")
    parser.add_argument("--no-download", action="store_true", help="skip NLTK's downloader")
    parser.add_argument("--no-apt", action="store_true", help="do not run apt-get")
    parser.add_argument("--source-dir", type=Path, default=DEBIAN_WORDNET, help="WordNet database folder")
    args = parser.parse_args(argv)
    try:
        ensure_wordnet(
            args.nltk_data,
            allow_download=not args.no_download,
            allow_apt=not args.no_apt,
            source_dir=args.source_dir,
        )
    except WordNetUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
