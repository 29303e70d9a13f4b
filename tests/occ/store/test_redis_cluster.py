"""The test cluster helper: three masters that share the slots, reachable through RedisCluster, torn down after."""

from __future__ import annotations

import socket

from redis.asyncio.cluster import RedisCluster
from redis_cluster import cluster_url, start_redis_cluster

from occ.store.client import connect, startup_nodes


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_fixture_cluster_spreads_shard_keys_over_the_masters(redis_cluster_url, redis_cluster_nodes):
    client = connect(redis_cluster_url, cluster=True, pool_size=8)
    assert isinstance(client, RedisCluster)
    try:
        keys = [f"occ:{{s{shard:03d}}}:acct:a{shard}".encode() for shard in range(12)]
        for index, key in enumerate(keys):
            await client.set(key, str(index).encode())
        assert [await client.get(key) for key in keys] == [str(index).encode() for index in range(12)]
        owners = {client.get_node_from_key(key).port for key in keys}
        assert len(owners) >= 2  # different slots, different masters
        assert owners <= {port for _, port in redis_cluster_nodes}
        # one shard's keys share a slot, so a multi-key command on them is allowed
        await client.mset({b"occ:{s005}:x": b"1", b"occ:{s005}:y": b"2"})
        assert await client.mget([b"occ:{s005}:x", b"occ:{s005}:y"]) == [b"1", b"2"]
    finally:
        await client.aclose()


async def test_fixture_cluster_is_empty_for_each_test(redis_cluster_url):
    client = connect(redis_cluster_url, cluster=True)
    try:
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


def test_start_redis_cluster_is_ok_everywhere_and_stops(tmp_path):
    nodes, startup = start_redis_cluster(tmp_path, masters=3)
    try:
        assert startup == [("127.0.0.1", node.port) for node in nodes]
        for node in nodes:
            info = node.command("CLUSTER", "INFO").decode()
            assert "cluster_state:ok" in info and "cluster_known_nodes:3" in info and "cluster_size:3" in info
    finally:
        for node in nodes:
            assert node.stop() == 0
    assert not any(port_open(port) for _, port in startup)
    assert [node.process.returncode for node in nodes] == [0, 0, 0]


def test_cluster_url_round_trips_to_startup_nodes():
    url = cluster_url([("127.0.0.1", 7000), ("127.0.0.1", 7001)])
    assert url == "redis://127.0.0.1:7000,redis://127.0.0.1:7001"
    assert [(node.host, node.port) for node in startup_nodes(url)] == [("127.0.0.1", 7000), ("127.0.0.1", 7001)]
    assert [(node.host, node.port) for node in startup_nodes("127.0.0.1:7002")] == [("127.0.0.1", 7002)]
