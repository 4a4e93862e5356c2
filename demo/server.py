"""A tiny HTTP server for the demo site and the tests, on 127.0.0.1 only.

- Serves a directory (``demo/site`` by default); ``/section/`` serves ``/section/index.html``.
- Replaces ``{{BASE}}`` in .html, .xml and .txt files with the server's own base URL, because
  feeds, sitemaps and canonical links need absolute URLs.
- Answers ``X.xml.gz`` by gzipping ``X.xml`` when no such file exists.
- Sends HTML pages gzip-compressed (``Content-Encoding: gzip``) to clients that accept it, as
  news sites do.
- Keeps a log of every request (``server.requests``, or ``GET /__log`` as JSON) so tests can
  assert what a crawl fetched, e.g. that robots.txt was obeyed.
- Fault pages: ``/broken/server-error.html`` answers 500.
- Answers conditional requests: every page has an ETag and a Last-Modified header, and
  ``If-None-Match`` / ``If-Modified-Since`` get 304 when nothing changed.
- Pages can be replaced at run time (``server.set_page(path, body, status=...)``) to simulate a
  site changing, or an article being taken down (status 404 or 410).

Run it alone with ``python -m demo.server [--port 8765] [--root DIR]``: the first line it prints
is its base URL (the contract Scrapy's own mock servers use).
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import json
import mimetypes
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ROOT = Path(__file__).resolve().parent / "site"
TEMPLATED_SUFFIXES = {".html", ".xml", ".txt"}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".gz": "application/x-gzip",
    ".json": "application/json",
}
FEED_TYPES = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "rdf.xml": "application/rdf+xml; charset=utf-8",
}
SERVER_ERROR_PATHS = {"/broken/server-error.html"}


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # path and query, as requested
    status: int
    user_agent: str


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), SiteHandler)
        self.root = root.resolve()
        self.requests: list[LoggedRequest] = []
        self.overrides: dict[str, tuple[int, bytes, float]] = {}  # path -> (status, body, mtime)
        self.started = time.time()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.gzip_html = True  # False: HTML sent uncompressed, as some servers do

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> SiteServer:
        self.thread = threading.Thread(target=self.serve_forever, name="demo-site", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def paths_requested(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def set_page(self, path: str, body: bytes | str, *, status: int = 200) -> None:
        """Serve `body` with `status` at `path` instead of the file (``{{BASE}}`` is still replaced)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        # Last-Modified has one-second resolution: make sure a change is always "newer".
        mtime = max(time.time(), self.started) + 1
        self.overrides[path] = (status, data, mtime)

    def statuses(self, prefix: str = "/") -> dict[str, list[int]]:
        """Status codes answered per path (paths starting with `prefix`)."""
        out: dict[str, list[int]] = {}
        with self.lock:
            for r in self.requests:
                if r.path.startswith(prefix):
                    out.setdefault(r.path, []).append(r.status)
        return out

    def log(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.requests.append(entry)


class SiteHandler(BaseHTTPRequestHandler):
    server: SiteServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/__log":
            body = json.dumps([r.__dict__ for r in self.server.requests]).encode()
            self._send(200, body, "application/json", log=False)
            return
        if path in SERVER_ERROR_PATHS:
            self._send(500, b"<html><body><h1>Internal Server Error</h1></body></html>", CONTENT_TYPES[".html"])
            return
        found = self._resolve(path)
        if found is None:
            self._send(404, b"<html><body><h1>Not Found</h1></body></html>", CONTENT_TYPES[".html"])
            return
        status, body, content_type, mtime = found
        if status != 200:
            self._send(status, body, content_type)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        validators = {"ETag": etag, "Last-Modified": email.utils.formatdate(mtime, usegmt=True)}
        if self._not_modified(etag, mtime):
            self._send(304, b"", content_type, headers=validators)
            return
        self._send(200, body, content_type, headers=validators)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if (match := self.headers.get("If-None-Match")) is not None:
            return etag in [tag.strip() for tag in match.split(",")]
        if since := self.headers.get("If-Modified-Since"):
            try:
                return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _resolve(self, path: str) -> tuple[int, bytes, str, float] | None:
        """(status, body, content type, last modified) for a path, or None for a 404."""
        if path.endswith("/"):
            path += "index.html"
        name = Path(path).name
        content_type = (
            FEED_TYPES.get(name)
            or CONTENT_TYPES.get(Path(path).suffix)
            or (mimetypes.guess_type(path)[0] or "application/octet-stream")
        )
        if path in self.server.overrides:
            status, body, mtime = self.server.overrides[path]
            return status, self._template(path, body), content_type, mtime
        file = (self.server.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.server.root):
            return None
        if file.is_file():
            return 200, self._template(path, file.read_bytes()), content_type, file.stat().st_mtime
        if path.endswith(".gz"):
            plain = self._resolve(path[: -len(".gz")])
            if plain is not None:
                return plain[0], gzip.compress(plain[1], mtime=0), CONTENT_TYPES[".gz"], plain[3]
        return None

    def _template(self, path: str, body: bytes) -> bytes:
        if Path(path).suffix in TEMPLATED_SUFFIXES:
            return body.replace(b"{{BASE}}", self.server.base_url.encode())
        return body

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        log: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        if log:
            self.server.log(LoggedRequest("GET", self.path, status, self.headers.get("User-Agent", "")))
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if status == 200 and content_type.startswith("text/html") and accepts_gzip and self.server.gzip_html:
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers = {**(headers or {}), "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:  # a 304 has no body
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log above replaces stderr noise


def serve(root: Path = DEFAULT_ROOT, port: int = 0) -> SiteServer:
    """Start a server in a background thread; stop it with `.stop()`."""
    return SiteServer(root, port).start()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="directory to serve")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    server = SiteServer(args.root, args.port)
    print(server.base_url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
