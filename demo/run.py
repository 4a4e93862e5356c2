"""`make demo`: serve the demo site, crawl it through the real pipeline, print a summary.

Starts the demo server on a free port on 127.0.0.1, writes the demo sources file with that
address, runs `scheduler.py crawl --all` (the same command a user runs), then stops the site.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from demo.server import serve

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "demo" / "sources.toml"


def write_sources(base_url: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.read_text(encoding="utf-8").replace("{{BASE}}", base_url), encoding="utf-8")
    return path


def shown_path(path: Path) -> Path:
    """Paths under the project as the user would type them (the crawl runs from the project root)."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "data" / "news.db")
    parser.add_argument("--sources-out", type=Path, default=ROOT / "data" / "demo-sources.toml")
    # A fixed port keeps the demo's URLs stable, so a second `make demo` is incremental.
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        server = serve(port=args.port)
    except OSError as exc:
        print(
            f"error: cannot serve the demo site on 127.0.0.1:{args.port} ({exc}); pass --port to use another one",
            file=sys.stderr,
        )
        return 1
    print(f"demo site: {server.base_url}")
    try:
        sources = write_sources(server.base_url, args.sources_out)
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scheduler.py"),
                "crawl",
                "--all",
                "--sources",
                str(sources),
                "--db",
                str(shown_path(args.db)),
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            check=False,
        )
        print(
            f"demo crawl finished in {time.monotonic() - started:.1f}s "
            f"({len(server.requests)} requests served by the demo site)"
        )
    finally:
        server.stop()
    shown = shown_path(args.db)
    print(f"\nBrowse it with Datasette (http://127.0.0.1:8001):\n  make serve DB={shown}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
