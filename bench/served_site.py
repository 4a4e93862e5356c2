"""The generated site, served by bench/siteserver.py for a benchmark, and the judge of what a crawler
stored from it: shared by bench/throughput.py (our pipeline) and bench/peers.py (the peers)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent


class ServedSite:
    """bench/siteserver.py in a process of its own, for the duration of a `with` block.

    `hosts` are more loopback addresses served on the same port as `host` (a real-page site's cycles).
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, hosts: tuple[str, ...] = ()) -> None:
        self.root = root
        self.host = host
        self.hosts = tuple(h for h in hosts if h != host)
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ServedSite:
        command = [sys.executable, str(ROOT / "bench" / "siteserver.py"), "--site", str(self.root)]
        for host in (self.host, *self.hosts):
            command += ["--host", host]
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.base_url = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not self.base_url.startswith("http://127."):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"site server did not start: {self.base_url!r}")
        return self

    def stats(self) -> dict[str, Any]:

        with urlopen(self.base_url + "/__stats", timeout=10) as response:
            return json.loads(response.read())

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip().casefold()


def judge(records: list[dict[str, Any]], manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare stored records (url, title, authors, date, text) with the site's truth.

    An article counts as correct when its title and date match, its author set matches, its text
    holds the first and last body paragraphs and none of the reader comments. Records for a path
    already seen (the same article under a tracking-parameter URL) count as duplicates.
    """
    truth = {m["path"]: m for m in manifest}
    seen: set[str] = set()
    counts = dict.fromkeys(("title", "authors", "date", "body", "no_comments", "correct"), 0)
    duplicates = unknown = 0
    for record in records:
        path = urlsplit(record["url"] or "").path
        expected = truth.get(path)
        if expected is None:
            unknown += 1
            continue
        if path in seen:
            duplicates += 1
            continue
        seen.add(path)
        text = _norm(record["text"])
        checks = {
            "title": _norm(record["title"]) == _norm(expected["title"]),
            "authors": {_norm(a) for a in record["authors"]} == {_norm(a) for a in expected["authors"]},
            "date": (record["date"] or "")[:10] == expected["published"][:10],
            "body": _norm(expected["first_paragraph"]) in text and _norm(expected["last_paragraph"]) in text,
            "no_comments": _norm(expected["comment"]) not in text,
        }
        for name, ok in checks.items():
            counts[name] += ok
        counts["correct"] += all(checks.values())
    return {
        "records": len(records),
        "distinct_articles": len(seen),
        "duplicates": duplicates,
        "not_articles": unknown,
        **counts,
    }
