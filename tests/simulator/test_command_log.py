"""``manage.py simulate_crowd`` at a human pace (what ``make demo`` runs in the background, its output going to
data/demo_crowd.log) writes a line every LOG_EVERY HITs as it goes, not only a report at the end; flat out it
shows a progress bar instead."""

import re
from io import StringIO

from tqdm import tqdm

from annotation.management.commands.simulate_crowd import LOG_EVERY, Command


def test_a_paced_crowd_logs_a_line_every_few_hits():
    err = StringIO()
    progress = Command(stdout=StringIO(), stderr=err)._progress(tqdm(disable=True), paced=True)
    for done in range(1, 2 * LOG_EVERY + 4):
        progress(done)
    assert [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in err.getvalue().splitlines()] == [
        f"{LOG_EVERY} HITs submitted",
        f"{2 * LOG_EVERY} HITs submitted",
    ]


def test_a_crowd_run_flat_out_moves_the_bar_and_logs_nothing():
    err, bar = StringIO(), tqdm(total=30, file=StringIO())
    progress = Command(stdout=StringIO(), stderr=err)._progress(bar, paced=False)
    for done in range(1, 2 * LOG_EVERY + 1):
        progress(done)
    assert bar.n == 2 * LOG_EVERY and err.getvalue() == ""
