"""What learning a site's template costs: the chrome step per article, and the counts it keeps.

    .venv/bin/python bench/site_chrome.py [--articles 5000]

Generates articles of one site (30 body lines of their own, 3 template lines, one of them with a
tail that changes per page, and a title with a section and the site's name), then runs what the
crawl runs for each new article (archive/site_chrome.py through a real SQLite archive: the strip
step, the count, and the write of the counts with each batch of 50), and reports the CPU per
article by slices of the fill, the size of site_lines, and how many template lines and affixes
were stripped (all should be, once the site has a few dozen articles; no body line ever), and
what the site's counts hold in memory at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.schema import open_db  # noqa: E402 (after the path set-up above)
from archive.site_chrome import SiteCounts, strip_site_chrome  # noqa: E402
from archive.sites import site_of  # noqa: E402
from archive.store import Archive  # noqa: E402

# Words of letters only: digits are masked in line keys (a line that differs by a number is the same line).
WORDS = sorted({a + b + c for a in "bdfgklmnprstvz" for b in "aeiou" for c in ("", "n", "r", "s", "l")})
TEMPLATE = ["The Example Gazette is owned by its readers and has been since 1901.", "Share this article"]


@dataclass
class Item:
    url: str
    title: str | None
    text: str
    markdown: str = ""
    word_count: int = 0
    signature: bytes = b""
    provenance: dict[str, str] = field(default_factory=dict)
    line_keys: set[int] = field(default_factory=set)


def article(rng: random.Random, n: int) -> Item:
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(12, 40))) + "." for _ in range(30)]
    lines += [*TEMPLATE, "Most read: " + " ".join(rng.choices(WORDS, k=6))]
    section = rng.choice(["Politics", "Business", "Sport"])
    return Item(
        url=f"https://www.gazette.example.com/{n}", title=f"Story {n} | {section} | The Gazette", text="\n".join(lines)
    )


def memory_kb(counts: SiteCounts) -> float:
    """What a site's counts hold in Python objects: the dict and set, keys, and (weight, at) pairs."""
    held = sys.getsizeof(counts.weights) + sys.getsizeof(counts.asked)
    for key, pair in counts.weights.items():
        held += sys.getsizeof(key) + sys.getsizeof(pair) + sum(map(sys.getsizeof, pair))
    held += sum(sys.getsizeof(key) for key in counts.asked if key not in counts.weights)
    return held / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(open_db(Path(tmp) / "chrome.db"))
        spent, slice_start, stripped_lines, cut_titles, lost_body = 0.0, 0, 0, 0, 0
        report_every = max(args.articles // 5, 1)
        print("chrome step per article (CPU ms: strip + count, and the counts' writes every 50 articles):")
        for n in range(args.articles):
            item = article(rng, n)
            body = item.text.splitlines()[:30]
            before = time.thread_time()
            strip_site_chrome(archive.chrome, item)
            archive.chrome.count(site_of(item.url), item.line_keys)
            if (n + 1) % 50 == 0:
                with archive.immediate_transaction():
                    archive.chrome.write()
            spent += time.thread_time() - before
            kept = item.text.splitlines()
            stripped_lines += 33 - len(kept)
            lost_body += sum(line not in kept for line in body)
            cut_titles += item.title == f"Story {n}"
            if (n + 1) % report_every == 0:
                print(f"  articles {slice_start + 1:>6,}-{n + 1:<6,} {spent / (n + 1 - slice_start) * 1000:.3f} ms")
                spent, slice_start = 0.0, n + 1
        (rows,) = archive.db.execute("SELECT count(*) FROM site_lines").fetchone()
        print(f"site_lines rows after {args.articles:,} articles of one site: {rows:,}")
        counts = archive.chrome.counts(site_of(item.url))
        print(f"counts kept in memory: {len(counts.weights):,} keys, {memory_kb(counts):,.0f} KB")
        print(
            f"template lines stripped: {stripped_lines:,} of {3 * args.articles:,}; titles cut to the headline: "
            f"{cut_titles:,} of {args.articles:,}; body lines lost: {lost_body}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
