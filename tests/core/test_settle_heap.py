"""`hall serve` moves its start-up heap out of the cyclic collector's reach.

A full collection that walks the whole start-up heap (pypinyin's dictionaries, the config,
the modules) paused the server's loop for 60-80 ms under load, every request in flight
waiting; after ``settle_heap`` a full collection walks only what requests left behind.
"""

from __future__ import annotations

import gc
import time

from aiohttp import web

from hall.cli import settle_heap


async def test_a_full_collection_no_longer_walks_the_start_up_heap() -> None:
    import pypinyin  # noqa: F401  (the largest part of a server's heap)

    gc.collect()
    tracked = len(gc.get_objects(generation=2))
    try:
        await settle_heap(web.Application())
        assert gc.get_freeze_count() >= tracked * 0.9
        assert len(gc.get_objects(generation=2)) < tracked / 20
        started = time.perf_counter()
        gc.collect()
        frozen_full = time.perf_counter() - started
    finally:
        gc.unfreeze()
    started = time.perf_counter()
    gc.collect()
    walking_everything = time.perf_counter() - started
    assert frozen_full < walking_everything
