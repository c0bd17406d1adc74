"""Writing records to files: the formats (JSON Lines, CSV, the spreadsheet layouts), files
that appear only when complete, and the writer thread that keeps the event loop free.

The CLI's ``export`` command and the workers' export jobs both write through here, so an
export file means the same whoever wrote it. xlsx needs the ``[xlsx]`` extra (openpyxl),
imported only when that format is asked for.
"""

from __future__ import annotations

from ._encoders import FORMATS, Encoder, make_encoder
from ._files import Output, open_output
from ._writer import BackgroundWriter, drain

__all__ = [
    "FORMATS",
    "BackgroundWriter",
    "Encoder",
    "Output",
    "drain",
    "make_encoder",
    "open_output",
]
