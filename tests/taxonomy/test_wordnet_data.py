"""WordNet provisioning from Debian's packages (no database, no network)."""

import fcntl
import gzip
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import nltk
import pytest
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from taxonomy import wordnet_data, wordnet_source
from taxonomy.wordnet_data import (
    DEBIAN_LEXNAMES_MANPAGE,
    DEBIAN_WORDNET,
    WordNetUnavailable,
    ensure_wordnet,
    format_lexnames,
    parse_lexnames_manpage,
)

ROOT = Path(__file__).resolve().parents[2]

needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET / "index.sense").is_file() or not DEBIAN_LEXNAMES_MANPAGE.is_file(),
    reason="needs apt-get install wordnet-base wordnet-sense-index (setup installs them when offline)",
)


@pytest.fixture(autouse=True)
def _isolated_nltk_path(monkeypatch):
    # ensure_wordnet puts its folder on NLTK's global data path; keep each test's change local.
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))


def _offline(nltk_data_dir: Path, logs: list[str] | None = None, **kwargs) -> Path:
    log = logs.append if logs is not None else lambda _msg: None
    return ensure_wordnet(nltk_data_dir, allow_download=False, allow_apt=False, log=log, **kwargs)


def _reader(corpus: Path) -> WordNetCorpusReader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no Open Multilingual WordNet: expected
        return WordNetCorpusReader(str(corpus), None)


@pytest.fixture(scope="module")
def arranged(tmp_path_factory) -> Path:
    """One corpus arranged from /usr/share/wordnet, shared by the read-only tests."""
    nltk_data_dir = tmp_path_factory.mktemp("data") / "nltk_data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nltk.data, "path", list(nltk.data.path))
        _offline(nltk_data_dir)
    return nltk_data_dir


@needs_debian_wordnet
def test_lexnames_from_the_real_manpage():
    rows = parse_lexnames_manpage(gzip.decompress(DEBIAN_LEXNAMES_MANPAGE.read_bytes()).decode())
    assert [num for num, _, _ in rows] == list(range(45))
    lines = format_lexnames(rows).splitlines(keepends=True)
    assert lines[0] == "00\tadj.all\t3\n"
    assert lines[3] == "03\tnoun.Tops\t1\n"
    assert lines[18] == "18\tnoun.person\t1\n"  # the man page pads this name with spaces
    assert lines[29] == "29\tverb.body\t2\n"
    assert lines[44] == "44\tadj.ppl\t3\n"
    assert lines[2] == "02\tadv.all\t4\n"


def test_lexnames_parser_rejects_gaps():
    page = "\\fB1\\fP\tNOUN\n.TS\n00\tnoun.Tops\tx\n02\tnoun.act\ty\n.TE\n"
    with pytest.raises(ValueError, match="contiguous"):
        parse_lexnames_manpage(page)


@needs_debian_wordnet
def test_arranged_corpus_loads_in_nltk(arranged):
    corpus = arranged / "corpora" / "wordnet"
    nltk.data.path.insert(0, str(arranged))
    wn = _reader(corpus)
    assert wn.get_version() == "3.0"
    assert wn.synset("dog.n.01").offset() == 2084071
    assert wn.synset("dog.n.01").lexname() == "noun.animal"
    assert sum(1 for _ in wn.all_synsets("n")) == 82115
    # NLTK's standard entry point finds it through the data path too.
    found = nltk.data.find("corpora/wordnet", paths=[str(arranged)])
    assert Path(found.path) == corpus


@needs_debian_wordnet
def test_second_run_copies_nothing(arranged, monkeypatch):
    lexnames = arranged / "corpora" / "wordnet" / "lexnames"
    before = lexnames.stat().st_mtime_ns

    def no_copy(*args, **kwargs):
        raise AssertionError("copied a file on a re-run")

    monkeypatch.setattr(wordnet_data.shutil, "copy2", no_copy)
    logs: list[str] = []
    assert _offline(arranged, logs) == arranged / "corpora" / "wordnet"
    assert lexnames.stat().st_mtime_ns == before
    assert logs == [f"WordNet: already present at {arranged / 'corpora' / 'wordnet'}"]


@needs_debian_wordnet
def test_a_broken_copy_is_rebuilt(tmp_path):
    corpus = tmp_path / "corpora" / "wordnet"
    corpus.mkdir(parents=True)
    (corpus / "data.noun").write_text("truncated")
    assert _offline(tmp_path) == corpus
    assert (corpus / "data.noun").stat().st_size == (DEBIAN_WORDNET / "data.noun").stat().st_size
    assert len((corpus / "lexnames").read_text().splitlines()) == 45


@needs_debian_wordnet
def test_nltk_zip_layout_counts_as_present(arranged, tmp_path):
    # NLTK's downloader may leave corpora/wordnet.zip; that is as good as a folder.
    (tmp_path / "corpora").mkdir()
    archive = tmp_path / "corpora" / "wordnet.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted((arranged / "corpora" / "wordnet").iterdir()):
            zf.write(path, f"wordnet/{path.name}")
    assert _offline(tmp_path, source_dir=tmp_path / "nothing") == archive
    assert [path.name for path in tmp_path.iterdir()] == ["corpora"]  # a ready folder is only read: no lock file


def test_no_source_stops_with_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nltk, "download", lambda *args, **kwargs: False)  # what an offline machine gets
    logs: list[str] = []
    with pytest.raises(WordNetUnavailable) as excinfo:
        ensure_wordnet(tmp_path / "nltk_data", allow_apt=False, source_dir=tmp_path / "empty", log=logs.append)
    message = str(excinfo.value)
    assert "apt-get install -y wordnet-base wordnet-sense-index" in message
    assert str(tmp_path / "nltk_data" / "corpora" / "wordnet") in message
    assert "data.noun" in message
    assert any("NLTK downloader failed" in line for line in logs)

    status = wordnet_data.main(
        ["--nltk-data", str(tmp_path / "nltk_data"), "--no-apt", "--source-dir", str(tmp_path / "empty")]
    )
    assert status == 1
    assert "apt-get install -y wordnet-base" in capsys.readouterr().err


def test_downloader_exception_falls_through(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(nltk, "download", unreachable)
    logs: list[str] = []
    with pytest.raises(WordNetUnavailable):
        ensure_wordnet(tmp_path, allow_apt=False, source_dir=tmp_path / "empty", log=logs.append)
    assert "network is unreachable" in logs[0]


def test_partial_staging_is_cleaned_up(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    for name in wordnet_data.SOURCE_FILES:
        (source / name).write_text("x")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(wordnet_data.shutil, "copy2", fail)
    with pytest.raises(OSError, match="disk full"):
        wordnet_data._arrange(source, tmp_path / "nltk_data", "00\tadj.all\t3\n")
    assert list((tmp_path / "nltk_data" / "corpora").iterdir()) == []


def test_apt_is_not_tried_without_root(tmp_path, monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError("ran a command")

    monkeypatch.setattr(wordnet_data.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(wordnet_data.subprocess, "run", no_subprocess)
    with pytest.raises(WordNetUnavailable, match="with sudo"):
        ensure_wordnet(tmp_path, allow_download=False, source_dir=tmp_path / "empty", log=lambda _m: None)


@needs_debian_wordnet
def test_the_noun_graph_loads_from_nltks_zip(arranged, tmp_path):
    # ensure_wordnet takes corpora/wordnet.zip as present; the import then has to read it (it looked for the folder
    # only and failed with "Resource 'wordnet' not found").
    (tmp_path / "corpora").mkdir()
    with zipfile.ZipFile(tmp_path / "corpora" / "wordnet.zip", "w", zipfile.ZIP_STORED) as zf:
        for path in sorted((arranged / "corpora" / "wordnet").iterdir()):
            zf.write(path, f"wordnet/{path.name}")
    graph = wordnet_source.load_noun_graph(tmp_path)
    assert graph.synsets[2084071].name == "dog.n.01"
    assert len(graph.synsets) == 82115


def test_the_noun_graph_says_where_wordnet_is_missing(tmp_path):
    with pytest.raises(LookupError, match=f"WordNet is not under {tmp_path}: run `manage.py ensure_wordnet` first"):
        wordnet_source.load_noun_graph(tmp_path)


def _flock_waiters(path: Path) -> set[int]:
    """Pids of the processes waiting for a flock on ``path``: Linux lists blocked requests in /proc/locks as
    '-> FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF' lines."""
    inode = f":{path.stat().st_ino}"
    waiters = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:
            kind, pid, file = fields[fields.index("->") + 1], fields[-4], fields[-3]
            if kind == "FLOCK" and file.endswith(inode):
                waiters.add(int(pid))
    return waiters


@needs_debian_wordnet
@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="reads who waits for a lock in Linux's /proc/locks")
def test_two_runs_at_once_take_turns_and_leave_one_good_corpus(tmp_path):
    # `make demo` in one terminal while `make test` starts in another: both provision the same folder. Without a
    # lock one run's rmtree of a copy it took for broken removed the corpus the other had just placed and was
    # reading (tracebacks: "Directory not empty", "No such file or directory: .../corpora/wordnet").
    nltk_data_dir = tmp_path / "nltk_data"
    nltk_data_dir.mkdir()
    corpus = nltk_data_dir / "corpora" / "wordnet"
    lock = nltk_data_dir / wordnet_data.LOCK_FILE
    command = [sys.executable, "-m", "taxonomy.wordnet_data", "--nltk-data", str(nltk_data_dir), "--no-download"]
    command += ["--no-apt"]
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a third run, mid-way: both runs started now overlap with it
        runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
        runs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        try:
            deadline = time.monotonic() + 60
            while _flock_waiters(lock) != {run.pid for run in runs} and time.monotonic() < deadline:
                if any(run.poll() is not None for run in runs):
                    break  # a run went ahead without waiting for the lock
                time.sleep(0.05)
            assert _flock_waiters(lock) == {run.pid for run in runs}
            assert not (nltk_data_dir / "corpora").exists()  # neither touched the folder while the lock was held
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
            outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    waiting = f"WordNet: another run is provisioning {nltk_data_dir}; waiting for it to finish"
    assert sorted(outputs) == sorted(
        [
            f"{waiting}\nWordNet: arranged from {DEBIAN_WORDNET} into {corpus}\n",
            f"{waiting}\nWordNet: already present at {corpus}\n",
        ]
    )
    assert [path.name for path in (nltk_data_dir / "corpora").iterdir()] == ["wordnet"]  # no staging left behind
    nltk.data.path.insert(0, str(nltk_data_dir))
    assert _reader(corpus).synset("dog.n.01").offset() == 2084071
