"""Reading the tables users bring from elsewhere (crowd votes, truth, gold, boxes).

Published crowd data comes comma-, tab- or semicolon-separated (a spreadsheet in a comma-decimal locale
saves ``;``), sometimes with a byte-order mark. Pure standard library: the evaluators outside Django use it.
"""

from __future__ import annotations

import csv
from typing import TextIO

DELIMITERS = ",\t;"


def dict_reader(handle: TextIO) -> csv.DictReader:
    """A ``csv.DictReader`` over ``handle`` (opened with ``newline=""``), its delimiter taken from the header
    line: comma, tab or semicolon, comma when the header has a single column."""
    header = handle.readline()
    handle.seek(0)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(header, delimiters=DELIMITERS)
    except csv.Error:  # one column, or nothing the sniffer recognises
        dialect = csv.excel
    return csv.DictReader(handle, delimiter=dialect.delimiter)
