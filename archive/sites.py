"""Which site a URL belongs to: the unit of "one record per story per site" and of a site's template."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from courlan.urlutils import get_tldinfo


@lru_cache(maxsize=4096)
def site_of(url: str) -> str:
    """The site a URL belongs to: its registered domain (www.bbc.co.uk -> bbc.co.uk), or for an
    address or a name without a public suffix (127.0.0.1, localhost), the host and port."""
    domain = get_tldinfo(url)[1]
    return domain or urlsplit(url).netloc.lower().removeprefix("www.")
