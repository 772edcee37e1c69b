"""A serving process puts its startup heap out of the garbage collector's reach (``api.app.freeze_startup_heap``).

A full collection walked every object the process held since it started (~120,000: imports, the node, the app):
66-86 ms in which a serving process answered nothing, measured during ``bench/api.py`` (docs/scaling.md). The
served app's lifespan, run here in-process on each store, freezes that heap once it serves, and unfreezes it
when it stops."""

from __future__ import annotations

import gc
import warnings

from infrastructure.node import init_node
from infrastructure.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app  # noqa: E402


def test_a_serving_process_freezes_its_startup_heap_and_collects_it_again_when_it_stops(store, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=store())
    init_node(settings, "https://a.example.org")
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings)) as client:  # runs the lifespan: the node opens, the app serves
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000  # the modules, the node and the app, not a handful of objects
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
