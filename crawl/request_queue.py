"""Requests waiting on disk: Scrapy's pickle LIFO disk queue with a cheaper way to name callbacks.

A request is stored as a dict that names its callback and errback, and Scrapy finds the names with
`inspect.getmembers(spider)`: every attribute of the spider, properties evaluated, twice per
request. That took 1.4 ms of the crawl process's CPU per queued request (a CPU profile of
bench/throughput.py), more than a third of Scrapy's own cost per article. Looking the names up
among the spider class's functions alone gives the same names.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import TYPE_CHECKING, Any

from scrapy import squeues

if TYPE_CHECKING:
    from scrapy import Request, Spider


@cache
def _methods_of(spider_class: type) -> object:
    """An object whose methods are the spider class's functions, and nothing else."""
    functions = {
        name: member
        for name, member in inspect.getmembers(spider_class, inspect.isfunction)
        if not name.startswith("__")
    }
    return type(f"{spider_class.__name__}Methods", (), functions)()


def request_to_dict(request: Request, spider: Spider) -> dict[str, Any]:
    """`request.to_dict(spider=spider)`, the same dict, without inspecting the spider instance.

    The callback's name is found among methods sharing its function, which `request_from_dict`
    then looks up on the spider itself.
    """
    return request.to_dict(spider=_methods_of(type(spider)))  # type: ignore[arg-type]


# Scrapy builds its disk queue classes at import time (squeues._scrapy_serialization_queue), so
# mypy sees a variable of type `type[BaseQueue]`, not a class to subclass or name in super().
_ScrapyPickleLifoDiskQueue: Any = squeues.PickleLifoDiskQueue


class PickleLifoDiskQueue(_ScrapyPickleLifoDiskQueue):
    """SCHEDULER_DISK_QUEUE: Scrapy's default disk queue, with `request_to_dict` above."""

    def push(self, request: Request) -> None:
        # Skip the parent's push (which would call request.to_dict(spider=self.spider)) for the
        # serializing queue beneath it.
        super(_ScrapyPickleLifoDiskQueue, self).push(request_to_dict(request, self.spider))
