"""``manage.py consensus_eval`` on small public crowd datasets shipped with the tests (no database)."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

CROWD = Path(__file__).resolve().parents[1] / "data" / "crowd"
BLUEBIRDS = CROWD / "bluebirds"  # Welinder et al. 2010: 108 images, 39 workers, 4,212 votes
TEMP = CROWD / "temp"  # Snow et al. 2008 temporal ordering: 462 items, 76 workers, 4,620 votes


def run(*args: str) -> str:
    out = StringIO()
    call_command("consensus_eval", *args, stdout=out)
    return out.getvalue()


def test_json_report_on_bluebirds_has_every_method_and_the_known_figures() -> None:
    report = json.loads(run("--votes", str(BLUEBIRDS / "votes.csv"), "--truth", str(BLUEBIRDS / "truth.csv"), "--json"))
    assert list(report) == ["mv", "imagenet", "ds", "difficulty", "synsight"]
    assert report["mv"]["correct"] == 82 and report["mv"]["scored"] == 108  # 0.759, as in the README table
    assert report["ds"]["correct"] == 97  # 0.898
    # Held-out votes choose the item-difficulty model here: 99/108, the best published figure (minimax entropy).
    assert report["difficulty"]["correct"] == 99
    assert report["synsight"]["correct"] == 99
    assert report["synsight"]["accuracy"] == pytest.approx(99 / 108)
    assert report["synsight"]["accuracy"] >= report["mv"]["accuracy"]
    assert all(row["seconds"] >= 0 for row in report.values())


def test_table_output_with_chosen_methods_on_temp() -> None:
    text = run(
        "--votes", str(TEMP / "votes.csv"), "--truth", str(TEMP / "truth.csv"), "--method", "mv", "--method", "synsight"
    )
    lines = text.strip().splitlines()
    assert lines[0].split() == ["method", "accuracy", "correct/scored", "seconds"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"mv", "synsight"}
    assert rows["mv"][1:3] == ["0.9394", "434/462"]
    assert rows["synsight"][1:3] == ["0.9416", "435/462"]


def test_without_truth_reports_no_accuracy() -> None:
    report = json.loads(run("--votes", str(TEMP / "votes.csv"), "--method", "mv", "--json"))
    assert report["mv"]["accuracy"] is None and report["mv"]["scored"] == 0


def test_imagenet_on_multiclass_votes_reports_an_error_row(tmp_path: Path) -> None:
    (tmp_path / "votes.csv").write_text("item,worker,label\na,w1,0\na,w2,1\nb,w1,2\n")
    report = json.loads(run("--votes", str(tmp_path / "votes.csv"), "--method", "imagenet", "--json"))
    assert "binary" in report["imagenet"]["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("item,annotator,label\na,w1,1\n", "lacks the column(s) worker"),
        ("item,worker,label\n", "has a header but no rows"),
    ],
)
def test_bad_votes_file_is_a_clear_command_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "votes.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=re.escape(message)):
        run("--votes", str(path))


def test_bad_truth_file_and_unknown_method_are_command_errors(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text("item,answer\na,1\n")
    with pytest.raises(CommandError, match=r"truth file .* lacks the column"):
        run("--votes", str(TEMP / "votes.csv"), "--truth", str(tmp_path / "truth.csv"))
    with pytest.raises(CommandError, match=r"Unknown method.*glad"):
        run("--votes", str(TEMP / "votes.csv"), "--method", "glad")
