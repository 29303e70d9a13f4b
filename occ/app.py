"""Everything one worker process serves, wired together: Redis, tariffs, the engine and its batcher, the
sweeper, the abort listener, the event-loop lag and garbage-collection watches, the Charging and Admin services, and
the Diameter gateway when ``diameter_port`` is set. Owned object: ``start()`` then ``close()``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from redis.exceptions import RedisError

from occ import metrics
from occ.api.admin import AdminService
from occ.api.charging import ChargingService
from occ.core.batcher import Batcher
from occ.core.engine import Engine
from occ.core.pauses import GcWatch, LoopLag
from occ.core.sweeper import LEASE_TICKS, Sweeper
from occ.core.tariffs import TariffHolder
from occ.diameter.gateway import Gateway, GatewayConfig
from occ.diameter_settings import allowed_peers
from occ.settings import Settings
from occ.store import keys
from occ.store.client import connect
from occ.store.lease import Lease
from occ.store.replication import ReplicaAck
from occ.store.scripts import Store
from occ.v1 import admin_pb2, admin_pb2_grpc, charging_pb2, charging_pb2_grpc

log = logging.getLogger(__name__)
DEMO_CREDIT_MICROS = 10_000_000
DEMO_LEDGER_CODE = 400000009
NOTICE_LISTENER_STOP_S = 2.0
ABORT_RESUBSCRIBE_S = 1.0
TARIFF_NOTICE = "tariff"  # the notice kind telling workers the current tariff changed
TARIFF_ROOT = "tariffs"  # below the data dir, where LoadTariff by path looks unless tariff_root says otherwise


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect(settings, pool_size=settings.worker_redis_pool_size)
        replicas = (ReplicaAck(settings.min_replicas_acked, settings.replica_ack_timeout_ms)
                    if settings.min_replicas_acked else None)  # fmt: skip
        self.store = Store(self.redis, shards=settings.shards, cluster=settings.redis_cluster,
                           on_roundtrip=metrics.observe_redis_roundtrip, replicas=replicas)  # fmt: skip
        # The tariff watch and the sweeper run once per deployment (whoever holds their lease), not once per worker.
        # Other workers hear of a new tariff by a notice (pub/sub), which redis-py's cluster client lacks: on a
        # cluster every worker keeps watching for itself.
        watch_lease = None if settings.redis_cluster else Lease(self.redis, "tariff-watch", ttl_s=LEASE_TICKS)
        self.tariffs = TariffHolder(self.redis, on_switch=metrics.set_current_tariff, lease=watch_lease,
                                    announce=None if settings.redis_cluster else self._announce_tariff)  # fmt: skip
        self.engine = Engine(self.store, self.tariffs, validity_time_s=settings.validity_time_s)
        self.batcher = Batcher(
            self.engine.process,
            window_ms=settings.batch_window_ms,
            max_size=settings.batch_max,
            on_batch=metrics.BATCH_SIZE.observe,
        )
        self.sweeper = Sweeper(
            self.store,
            interval_s=settings.sweep_interval_s,
            lease=Lease(self.redis, "sweeper", ttl_s=LEASE_TICKS * settings.sweep_interval_s),
            on_close=lambda cause, closed: metrics.SWEEPER_CLOSES.labels(cause).inc(closed),
            on_count=metrics.OPEN_SESSIONS.set,
        )
        self.charging = ChargingService(self.batcher, self.tariffs, validity_time_s=settings.validity_time_s)
        self.admin = AdminService(
            self.store,
            self.tariffs,
            validity_time_s=settings.validity_time_s,
            notify=self.notify,
            tariff_root=Path(settings.tariff_root or Path(settings.data_dir) / TARIFF_ROOT),
            tariff_upload_max_bytes=settings.tariff_upload_max_bytes,
        )
        self.loop_lag = LoopLag(metrics.EVENT_LOOP_LAG_SECONDS.observe)
        self.gc_watch = GcWatch(metrics.observe_gc_pause)
        self.diameter = self._diameter_gateway(settings) if settings.diameter_port else None
        self._aborts: asyncio.Task | None = None
        self._closing = False  # set by close(): the notice listener stops even if a cancel was swallowed

    def _diameter_gateway(self, settings: Settings) -> Gateway:
        config = GatewayConfig(host=settings.diameter_host or settings.host, port=settings.diameter_port,
                               origin_host=settings.diameter_origin_host, origin_realm=settings.diameter_origin_realm,
                               peers=allowed_peers(settings.diameter_peers), watchdog_s=settings.diameter_watchdog_s,
                               validity_time_s=settings.validity_time_s, reuse_port=settings.workers > 1)  # fmt: skip
        return Gateway(config, self.batcher, self.tariffs)

    async def start(self) -> None:
        await self.store.load_scripts()
        indexed = await self.store.index_accounts()
        if indexed:
            log.info("accounts made before the account index added to it", extra={"accounts": indexed})
        await self.tariffs.start()
        if not self.tariffs.loaded and self.settings.tariff_dir:
            await self.tariffs.publish(self.settings.tariff_dir)
        if not self.tariffs.loaded:
            log.warning("no tariff loaded yet: charging requests fail until one is (occ tariff load DIR)")
        elif self.settings.demo_account:
            await self._create_demo_account(self.settings.demo_account)
        self.batcher.start()
        self.sweeper.start()
        self.loop_lag.start()
        self.gc_watch.start()
        if self.diameter is not None:
            await self.diameter.start()
        if not self.settings.redis_cluster:
            self._aborts = asyncio.create_task(self._listen_for_notices(), name="notice-listener")

    async def _create_demo_account(self, account_id: str) -> None:
        """An account to try OCC with: the tariff's first plan and 10.00 of credit, created once."""
        tariff = self.tariffs.current
        fields = {"currency": tariff.tariff.currency, "credit_limit": 0, "status": "ACTIVE",
                  "plan": tariff.plan_names[0], "tax_profile": ""}  # fmt: skip
        if await self.store.write_account(account_id, "create", fields) == "ok":
            await self.store.transact(account_id, key="demo-opening", kind="topup", amount_micros=DEMO_CREDIT_MICROS,
                                      ledger_code=DEMO_LEDGER_CODE, description="demo credit")  # fmt: skip
            log.info("demo account created", extra={"account": account_id, "plan": tariff.plan_names[0]})

    async def notify(self, kind: str, account_id: str, session_id: str, reason: str = "") -> None:
        """Tell the switch carrying a session to end it (``abort``) or to come back (``reauth``), on every frontend.

        On Redis Cluster (no pub/sub in redis-py's asyncio cluster client) only this frontend's streams are told.
        """
        if self.settings.redis_cluster:
            self._push_notice(kind, account_id, session_id, reason)
        else:
            await self.redis.publish(keys.NOTICE_CHANNEL, f"{kind}\n{account_id}\n{session_id}\n{reason}")

    async def _announce_tariff(self, tariff_hash: str) -> None:
        """Tell every worker that the current tariff changed (a ``tariff`` notice; they read the hash themselves)."""
        await self.notify(TARIFF_NOTICE, "", "", tariff_hash)

    async def _listen_for_notices(self) -> None:
        """Push notices (aborts, re-auth requests) to the switch on the stream that carries the session, if here;
        follow the current tariff on a ``tariff`` notice, and on every (re)subscription, which may have missed one.

        Survives losing Redis: it subscribes again after a pause, unless the app is closing (a cancel that redis-py's
        read swallowed would otherwise leave it subscribing again for ever, and the worker would never exit)."""
        while not self._closing:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(keys.NOTICE_CHANNEL)
                    await self._follow_tariff()
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        kind, account_id, session_id, reason = message["data"].decode().split("\n", 3)
                        if kind == TARIFF_NOTICE:
                            await self._follow_tariff()
                        else:
                            self._push_notice(kind, account_id, session_id, reason)
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                log.warning("notice listener lost Redis; subscribing again", extra={"error": str(exc)})
                await asyncio.sleep(ABORT_RESUBSCRIBE_S)

    async def _follow_tariff(self) -> None:
        try:
            await self.tariffs.refresh()
        except (RedisError, OSError):
            raise
        except Exception:  # a tariff that cannot be read leaves the current one in force; the listener goes on
            log.exception("could not follow the current tariff; keeping the one in force")

    def _push_notice(self, kind: str, account_id: str, session_id: str, reason: str) -> None:
        """To the gRPC stream and the Diameter peer that carry the session in this process, if any does."""
        self.charging.push_notice(kind, account_id, session_id, reason)
        if self.diameter is not None:
            self.diameter.push_notice(kind, account_id, session_id, reason)

    async def ping(self) -> None:
        """Raise if Redis cannot be reached (the server's health follows it)."""
        await self.redis.ping()

    def add_charging(self, server: grpc.aio.Server) -> list[str]:
        charging_pb2_grpc.add_ChargingServicer_to_server(self.charging, server)
        return [charging_pb2.DESCRIPTOR.services_by_name["Charging"].full_name]

    def add_admin(self, server: grpc.aio.Server) -> list[str]:
        """Admin, which answers only calls that ``occ.api.auth.AdminAuthInterceptor`` let through (the server's)."""
        admin_pb2_grpc.add_AdminServicer_to_server(self.admin, server)
        return [admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> list[str]:
        """Both services on one server (tests serve them so; give that server the Admin interceptor too)."""
        return self.add_charging(server) + self.add_admin(server)

    async def close(self) -> None:
        self._closing = True
        if self.diameter is not None:
            await self.diameter.close()
        if self._aborts is not None:
            self._aborts.cancel()
            # Bounded: a cancel that lands inside redis-py's read can be swallowed (Python 3.11's asyncio.wait_for),
            # leaving the listener blocked on a channel nobody publishes to; closing must not wait for it forever.
            done, _ = await asyncio.wait({self._aborts}, timeout=NOTICE_LISTENER_STOP_S)
            if not done:
                log.warning("notice listener did not stop; left to end with the event loop")
        self.gc_watch.close()
        await self.loop_lag.close()
        await self.sweeper.close()
        await self.batcher.close()
        await self.tariffs.close()
        await self.redis.aclose()
