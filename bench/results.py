"""bench/RESULTS.md is shared by every benchmark: each one owns the section under its own heading."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section that starts with `heading` (or append it), leaving the others alone.

    `section` includes its heading line; a section runs to the next "## " heading or the end.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        following = re.search(r"^## ", text[start + len(heading) :], re.MULTILINE)
        tail = text[start + len(heading) + following.start() :] if following else ""
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    path.write_text(text, encoding="utf-8")
