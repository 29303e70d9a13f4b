"""Fixtures for the online core: a real App and gRPC server over a real redis-server (single node or a cluster).

``charging`` serves the example tariff on a fresh single redis-server; tests that must also hold on Redis Cluster
take ``backend_charging``, parametrised over both (the cluster is started once per session and flushed per test).
The helpers live in ``tests/online_app.py`` (tests import them from there, not from here: with several
``conftest.py`` files, ``import conftest`` finds whichever pytest loaded last).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from online_app import Client, serving


@pytest.fixture
async def charging(redis_url, tmp_path) -> AsyncIterator[Client]:
    async with serving(redis_url, tmp_path) as client:
        yield client


@pytest.fixture(params=["single", "cluster"])
async def backend_charging(request, tmp_path) -> AsyncIterator[Client]:
    if request.param == "single":
        url = request.getfixturevalue("redis_url")
        async with serving(url, tmp_path) as client:
            yield client
        return
    url = request.getfixturevalue("redis_cluster_url")  # flushed before each test
    async with serving(url, tmp_path, cluster=True) as client:
        yield client
