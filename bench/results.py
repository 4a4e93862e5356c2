"""bench/RESULTS.md is shared by every benchmark: each one owns the section under its own heading."""

from __future__ import annotations

import re
from pathlib import Path

# A line in a section after which its text is written by hand (analysis, verdicts, the history of
# runs): a benchmark rewriting the section keeps it, after what it writes.
NOTES_MARKER = "<!-- notes written by hand: a benchmark rewriting this section keeps them -->"


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section that starts with `heading` (or append it), leaving the others alone.

    `section` includes its heading line; a section runs to the next "## " heading or the end.
    What follows NOTES_MARKER in the old section is kept, marker included.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        following = re.search(r"^## ", text[start + len(heading) :], re.MULTILINE)
        end = start + len(heading) + following.start() if following else len(text)
        tail = text[end:]
        old = text[start:end]
        notes = old[old.index(NOTES_MARKER) :].rstrip("\n") + "\n" if NOTES_MARKER in old else ""
        written = section.rstrip("\n") + "\n" + ("\n" + notes if notes else "")
        text = text[:start] + written + ("\n" + tail if tail else "")
    path.write_text(text, encoding="utf-8")
