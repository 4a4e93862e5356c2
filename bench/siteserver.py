"""A cheap HTTP server for a site made by bench/sitegen.py, on 127.0.0.1 only.

    .venv/bin/python bench/siteserver.py --site bench/out/site-2000 [--port 0]

The first line it prints is its base URL. It answers from pre-rendered bytes: the pack file is
memory-mapped and each response is a slice of it behind a fixed header, so serving a page costs
microseconds of CPU and the crawler, not the server, is what a benchmark measures. The few
responses that need absolute URLs (feeds, sitemaps, robots.txt) have ``{{BASE}}`` replaced once, at
start-up. Article pages are stored gzip-compressed and sent with ``Content-Encoding: gzip`` to
clients that accept it (every crawler here does), as a real server would.

A site may be served under several loopback addresses at once (``--host`` repeated, all on one
port): bench/realsite.py puts each cycle of its real pages on an address of its own, so that the
archive sees each cycle as a site of its own. Its pages name their own absolute URL (canonical
link, og:url), which holds the port: they are stored gzip-compressed with ``{{PORT}}`` in them
(flag ``gztpl``), and are decompressed, filled in and compressed again once, at start-up.
``{{PORT}}`` stands for ``:PORT`` (nothing on port 80), ``{{BASE}}`` for the first address's base URL.

A request's target is looked up whole first (path and query string: a query-style site's sitemaps,
``/arc/outboundfeeds/sitemap/?outputType=xml&from=0``, are stored so), in any order of its query
parameters, as the application behind a real URL like that would read them; then by its bare
path, so an article asked for with ``?utm_source=...`` is the article.

HTTP/1.1 keep-alive and pipelining are supported; only GET and HEAD. ``GET /__stats`` answers a
JSON object with the number of requests served and this process's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import mmap
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sitegen import read_index

NOT_FOUND = b"<html><body><h1>Not Found</h1></body></html>"
MAX_HEADER = 64 * 1024


def _query_key(query: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(parse_qsl(query, keep_blank_values=True)))


class PackedSite:
    """Every response body of a generated site, by path (and query), ready to send."""

    def __init__(self, root: Path, base_url: str, port: int) -> None:
        self.file = open(root / "pages.bin", "rb")  # noqa: SIM115 (kept open for the mmap)
        self.data = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        self.entries: dict[str, tuple[int, int, bool, bytes]] = {}  # target -> offset, length, gzip, type
        self.rendered: dict[str, bytes] = {}  # templated bodies, {{BASE}} replaced once
        # path -> {sorted query parameters -> stored target}, for the targets stored with a query
        self.by_query: dict[str, dict[tuple[tuple[str, str], ...], str]] = {}
        base, port_text = base_url.encode(), b"" if port == 80 else b":%d" % port
        for target, (offset, length, flags, content_type) in read_index(root).items():
            self.entries[target] = (offset, length, flags in ("gz", "gztpl"), content_type.encode())
            if flags == "tpl":
                body = self.data[offset : offset + length]
                self.rendered[target] = body.replace(b"{{BASE}}", base).replace(b"{{PORT}}", port_text)
            elif flags == "gztpl":
                page = gzip.decompress(self.data[offset : offset + length])
                page = page.replace(b"{{BASE}}", base).replace(b"{{PORT}}", port_text)
                self.rendered[target] = gzip.compress(page, compresslevel=5, mtime=0)
            path, question, query = target.partition("?")
            if question:
                self.by_query.setdefault(path, {})[_query_key(query)] = target

    def resolve(self, target: str) -> str | None:
        """The stored target that answers a request target: itself, the same query in another
        order, or (for any other query, e.g. utm_* on an article) its bare path."""
        if target in self.entries:
            return target
        path, question, query = target.partition("?")
        if question and path in self.by_query:  # only paths stored with a query pay for parsing one
            found = self.by_query[path].get(_query_key(query))
            if found is not None:
                return found
        return path if path in self.entries else None

    def lookup(self, target: str, accepts_gzip: bool) -> tuple[bytes | memoryview, bytes, bool] | None:
        """(body, content type, gzip-encoded) for a request target (path and query), or None."""
        key = self.resolve(target)
        if key is None:
            return None
        offset, length, gz, content_type = self.entries[key]
        rendered = self.rendered.get(key)
        body = memoryview(self.data)[offset : offset + length] if rendered is None else rendered
        if gz and not accepts_gzip:
            return gzip.decompress(body), content_type, False  # rare: only clients without gzip
        return body, content_type, gz


class HttpProtocol(asyncio.Protocol):
    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self.transport.close()  # type: ignore[union-attr]
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if not self.respond(head):
                return

    def respond(self, head: bytes) -> bool:
        """Answer one request; returns False once the connection is to be closed."""
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ", 2)
        except ValueError:
            self.transport.close()  # type: ignore[union-attr]
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        target_text = target.decode("latin-1")
        keep_alive = headers.get(b"connection") != b"close" and version == b"HTTP/1.1"
        self.server.requests += 1
        if target_text.partition("?")[0] == "/__stats":
            body: bytes | memoryview = json.dumps(self.server.stats()).encode()
            status, content_type, gz = b"200 OK", b"application/json", False
        else:
            found = self.server.site.lookup(target_text, b"gzip" in headers.get(b"accept-encoding", b""))
            if found is None:
                self.server.not_found += 1
                body, status, content_type, gz = NOT_FOUND, b"404 Not Found", b"text/html", False
            else:
                body, content_type, gz = found
                status = b"200 OK"
        header = [
            b"HTTP/1.1 " + status,
            b"Content-Type: " + content_type,
            b"Content-Length: " + str(len(body)).encode(),
            b"Connection: " + (b"keep-alive" if keep_alive else b"close"),
        ]
        if gz:
            header.append(b"Content-Encoding: gzip")
        self.transport.write(b"\r\n".join(header) + b"\r\n\r\n")  # type: ignore[union-attr]
        if method != b"HEAD":
            self.transport.write(body)  # type: ignore[union-attr]
        if not keep_alive:
            self.transport.close()  # type: ignore[union-attr]
            return False
        return True


class BenchServer:
    def __init__(self, root: Path, port: int = 0, host: str | list[str] = "127.0.0.1") -> None:
        hosts = [host] if isinstance(host, str) else host
        if not hosts or not all(h.startswith("127.") for h in hosts):
            raise ValueError("the benchmark server only listens on loopback (127.0.0.0/8)")
        self.root = root
        self.hosts = hosts
        self.port = port
        self.requests = 0
        self.not_found = 0
        self.site: PackedSite | None = None

    def stats(self) -> dict[str, float]:
        cpu = os.times()
        return {
            "requests": self.requests,
            "not_found": self.not_found,
            "cpu_seconds": round(cpu.user + cpu.system, 3),
        }

    async def serve(self, ready: asyncio.Future[str] | None = None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: HttpProtocol(self), self.hosts[0], self.port, backlog=512)
        port = server.sockets[0].getsockname()[1]
        # The other addresses on the first one's port: one port, so one {{PORT}} in every page.
        others = [await loop.create_server(lambda: HttpProtocol(self), h, port, backlog=512) for h in self.hosts[1:]]
        # Port 80 is left out of the URL: trafilatura's URL checks (courlan) reject an IP with a port.
        base_url = f"http://{self.hosts[0]}" + ("" if port == 80 else f":{port}")
        self.site = PackedSite(self.root, base_url, port)
        print(base_url, flush=True)
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set_result, None)
        async with server:
            await stop
        for other in others:
            other.close()
        print(json.dumps(self.stats()), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="a directory written by bench/sitegen.py")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free port)")
    parser.add_argument(
        "--host", action="append", help="a loopback address, repeatable: one port on each (default: 127.0.0.1)"
    )
    args = parser.parse_args(argv)
    if not (args.site / "index.tsv").exists():
        parser.error(f"{args.site} holds no generated site (run bench/sitegen.py first)")
    started = time.monotonic()
    asyncio.run(BenchServer(args.site, args.port, args.host or ["127.0.0.1"]).serve())
    print(f"served for {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
