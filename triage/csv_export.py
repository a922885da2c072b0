"""CSV that a spreadsheet opens as text: every CSV triage writes goes through ``escape_cell``.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice and
Google Sheets (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and one starting with a tab or a
carriage return can become one once the spreadsheet trims it. Ticket text, titles and
identifiers come from customers, so each such text cell gets a single quote in front, as OWASP's
"CSV Injection" page says: the spreadsheet shows the text and runs nothing. Quotes, commas and
line breaks are the csv module's to quote. Numbers stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

# OWASP, CSV Injection: equals, plus, minus, at, tab (0x09) and carriage return (0x0D).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """``value`` with a ``'`` in front when it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CsvWriter:
    """``csv.writer`` whose rows pass through ``escape_cell``."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([escape_cell(value) for value in row])


class CsvDictWriter(csv.DictWriter):  # subscriptable (DictWriter[str]) only from Python 3.12
    """``csv.DictWriter`` whose rows (and header) pass through ``escape_cell``."""

    def writerow(self, rowdict: Mapping[Any, Any]) -> Any:
        return super().writerow({key: escape_cell(value) for key, value in rowdict.items()})
