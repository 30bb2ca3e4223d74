"""``manage.py boxes_eval`` on small CSVs: the report per method, demo truth with a wnid column, bad input."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

BOXES = """image,worker,x1,y1,x2,y2
a.jpg,w1,10,10,50,50
a.jpg,w2,12,10,52,50
a.jpg,w3,10,12,50,52
a.jpg,w3,300,300,340,340
b.jpg,w1,0,0,20,20
b.jpg,w2,1,1,20,20
"""
TRUTH = """image,wnid,x1,y1,x2,y2
a.jpg,n13873502,10,10,50,50
b.jpg,n13873502,0,0,20,20
c.jpg,n13873502,5,5,25,25
"""


def run(tmp_path, boxes=BOXES, truth=TRUTH, *args):
    (tmp_path / "boxes.csv").write_text(boxes)
    (tmp_path / "truth.csv").write_text(truth)
    out = StringIO()
    call_command("boxes_eval", "--boxes", str(tmp_path / "boxes.csv"), "--truth", str(tmp_path / "truth.csv"), *args,
                 stdout=out)  # fmt: skip
    return out.getvalue()


def test_json_report_scores_every_method_against_demo_style_truth(tmp_path):
    report = json.loads(run(tmp_path, BOXES, TRUTH, "--json"))
    assert list(report) == ["raw", "nms", "mean", "median", "median-2", "median-majority"]
    raw = report["raw"]
    assert (raw["predicted"], raw["matched"], raw["truth"], raw["duplicates"]) == (6, 2, 3, 3)
    median = report["median"]
    assert (median["predicted"], median["matched"], median["duplicates"]) == (3, 2, 0)
    two = report["median-2"]
    assert (two["predicted"], two["matched"], two["precision"], two["recall"]) == (2, 2, 1.0, 0.6667)
    assert two["f1"] == 0.8
    assert report["median"]["images"] == 3


def test_table_lists_each_method_with_its_setting(tmp_path):
    text = run(tmp_path, BOXES, TRUTH, "--method", "median", "--method", "nms")
    lines = text.strip().splitlines()
    assert lines[0].split()[:6] == ["method", "boxes", "precision", "recall", "F1", "meanIoU"]
    assert [line.split()[0] for line in lines[1:]] == ["median", "nms"]


def test_without_truth_it_reports_boxes_only(tmp_path):
    (tmp_path / "boxes.csv").write_text(BOXES)
    out = StringIO()
    call_command("boxes_eval", "--boxes", str(tmp_path / "boxes.csv"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["median"]["boxes_out"] == 3
    assert "precision" not in report["median"]


def test_zero_area_crowd_rows_are_skipped_and_reversed_corners_reordered(tmp_path):
    boxes = BOXES + "b.jpg,w3,5,5,5,9\nb.jpg,w3,20,20,0,0\n"
    report = json.loads(run(tmp_path, boxes, TRUTH, "--json", "--method", "median-2"))
    assert report["median-2"]["skipped_rows"] == 1
    assert report["median-2"]["boxes_in"] == 7


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ("image,x1,y1,x2,y2\na,1,1,2,2\n", "lacks the column(s) worker"),
        ("image,worker,x1,y1,x2,y2\na,w,1,1,two,2\n", "line 2: x2 must be a number, got 'two'"),
        ("image,worker,x1,y1,x2,y2\na,w,1,1,5\n", "line 2: no y2"),
        ("image,worker,x1,y1,x2,y2\na,w,1,1,inf,2\n", "line 2: x2 must be a finite number"),
        ("image,worker,x1,y1,x2,y2\na,w,nan,1,3,2\n", "line 2: x1 must be a finite number"),
        ("image,worker,x1,y1,x2,y2\n", "has a header but no rows"),
        ("", "is empty"),
    ],
)
def test_bad_boxes_files_stop_with_a_sentence(tmp_path, boxes, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path, boxes, TRUTH)


def test_unknown_method_and_missing_file_are_refused(tmp_path):
    with pytest.raises(CommandError, match="Unknown method"):
        run(tmp_path, BOXES, TRUTH, "--method", "best")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("boxes_eval", "--boxes", str(tmp_path / "nope.csv"))


def test_a_truth_file_that_matches_no_crowd_image_is_refused(tmp_path):
    truth = TRUTH.replace("a.jpg", "images/a.jpg").replace("b.jpg", "images/b.jpg").replace("c.jpg", "images/c.jpg")
    with pytest.raises(CommandError, match=r"None of the 3 images of .*truth.csv has a crowd box in .*boxes.csv"):
        run(tmp_path, BOXES, truth)


def test_voc_corner_names_and_id_columns_are_read_as_ours(tmp_path):
    ours = json.loads(run(tmp_path, BOXES, TRUTH, "--json"))
    boxes = BOXES.replace("image,worker,x1,y1,x2,y2", "image_id,worker_id,xmin,ymin,xmax,ymax")
    truth = TRUTH.replace("image,wnid,x1,y1,x2,y2", "image_id,wnid,xmin,ymin,xmax,ymax")
    theirs = json.loads(run(tmp_path, boxes, truth, "--json"))
    assert theirs.keys() == ours.keys()
    assert all({k: v for k, v in theirs[m].items() if k != "seconds"} ==
               {k: v for k, v in ours[m].items() if k != "seconds"} for m in ours)  # fmt: skip


def test_tab_separated_files_are_read_as_csv(tmp_path):
    ours = json.loads(run(tmp_path, BOXES, TRUTH, "--json"))
    theirs = json.loads(run(tmp_path, BOXES.replace(",", "\t"), TRUTH.replace(",", "\t"), "--json"))
    assert all({k: v for k, v in theirs[m].items() if k != "seconds"} ==
               {k: v for k, v in ours[m].items() if k != "seconds"} for m in ours)  # fmt: skip
    assert theirs["median"]["matched"] == 2
