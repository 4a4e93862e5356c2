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
DEFAULT_PORT = 8765


def generated_header(base_url: str, path: Path) -> str:
    """What the written file says about itself (the template's own header is about the template)."""
    port = base_url.rsplit(":", 1)[-1]
    return (
        f"# Written by `make demo` (demo/run.py) from demo/sources.toml, for the demo site at {base_url}.\n"
        f"# Serve the site again with `.venv/bin/python -m demo.server --port {port}`, then crawl it by hand:\n"
        f"#   .venv/bin/python scheduler.py crawl --all --sources {shown_path(path)}\n"
        "# Every field is described in sources.toml's header and in docs/sources.md.\n"
    )


def without_leading_comments(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def write_sources(base_url: str, path: Path) -> Path:
    """The demo sources file pointed at `base_url`, with a header that says so."""
    body = without_leading_comments(TEMPLATE.read_text(encoding="utf-8")).replace("{{BASE}}", base_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generated_header(base_url, path) + "\n" + body, encoding="utf-8")
    return path


def shown_path(path: Path) -> Path:
    """Paths under the project as the user would type them (the crawl runs from the project root)."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "data" / "news.db", help="archive (default: data/news.db)")
    parser.add_argument(
        "--sources-out",
        type=Path,
        default=ROOT / "data" / "demo-sources.toml",
        help="where to write the demo sources file (default: data/demo-sources.toml)",
    )
    # A fixed port keeps the demo's URLs stable, so a second `make demo` is incremental.
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (default: %(default)s; make demo PORT=N)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = serve(port=args.port)
    except OSError as exc:
        print(
            f"error: cannot serve the demo site on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
            "choose another port: make demo PORT=N (or python -m demo.run --port N)",
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
