"""Where fault tests put their figures: stdout, and a file when ``TIDINGS_FAULT_REPORT`` names one
(pytest-xdist swallows stdout; docs/reliability.md is written from that file)."""

from __future__ import annotations

import os
from pathlib import Path


def publish(*lines: str) -> None:
    text = "\n".join(lines)
    print(text)
    target = os.environ.get("TIDINGS_FAULT_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(text + "\n")
