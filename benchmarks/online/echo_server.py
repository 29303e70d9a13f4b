"""The framework's ceiling: a grpc.aio server on uvloop speaking ``occ.v1.Charging`` with no logic behind it.

Run as its own process (``bench_online.py`` starts it as a subprocess)::

    .venv/bin/python benchmarks/online/echo_server.py --port 50151 [--workers N]

``StartSession`` answers every request with a canned ``SessionAnswer`` (SUCCESS, one ``QuotaAnswer`` echoing the
first quota's rating group, 60 units granted, validity 60 s; the session id and request number are echoed so the
client can match answers). ``Stream`` answers each ``StreamRequest`` with its ``correlation_id`` and that same
answer. ``Authorize`` (the request of the h2load peak mode) gets a canned ``AuthorizeAnswer`` (SUCCESS, 3600 s).
There is no Redis, no rating and no validation: what is left is the cost of gRPC framing, protobuf
decoding and encoding and the event loop, which is the most any servicer on this stack can do.

It uses the server options OCC uses (``SERVER_OPTIONS``: SO_REUSEPORT, message size and pending-request limits;
OCC also adds a metrics interceptor, which counts as OCC's own work here) and binds 127.0.0.1 only. With
``--workers N`` it runs N server processes sharing the port through SO_REUSEPORT, as ``occ serve --workers N``
does; the kernel spreads connections (not requests) over them. When every worker listens it prints
``READY <port> <pid> …`` on stdout. SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import grpc
import uvloop

# The generated code lives in the working tree's occ/v1 (run as a path, only benchmarks/online is on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

# The options of OCC's own server (occ.api.server.server_options with the default settings).
MAX_MESSAGE_BYTES = 65536
PENDING_REQUESTS = 100_000
SERVER_OPTIONS = (
    ("grpc.so_reuseport", 1),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.server.max_pending_requests", PENDING_REQUESTS),
    ("grpc.server.max_pending_requests_hard_limit", PENDING_REQUESTS),
)
GRANTED_UNITS = 60
VALIDITY_S = 60


def _canned_quota(rating_group: int) -> pb.QuotaAnswer:
    return pb.QuotaAnswer(
        rating_group=rating_group,
        result_code=pb.SUCCESS,
        granted_units=GRANTED_UNITS,
        validity_time_s=VALIDITY_S,
    )


class EchoCharging(pb_grpc.ChargingServicer):
    """StartSession, Authorize and Stream with canned answers; the other methods stay unimplemented (UNIMPLEMENTED)."""

    def __init__(self) -> None:
        self._quotas = {100: _canned_quota(100)}
        self._authorized = pb.AuthorizeAnswer(
            result_code=pb.SUCCESS, max_units=3600, cost_micros=1_000_000, currency="EUR", destination_group="UK_FIXED"
        )

    def _answer(self, request: pb.SessionRequest) -> pb.SessionAnswer:
        rating_group = request.quotas[0].rating_group if request.quotas else 100
        quota = self._quotas.get(rating_group) or self._quotas.setdefault(rating_group, _canned_quota(rating_group))
        return pb.SessionAnswer(
            session_id=request.session_id,
            request_number=request.request_number,
            result_code=pb.SUCCESS,
            quotas=(quota,),
            validity_time_s=VALIDITY_S,
            currency="EUR",
        )

    async def StartSession(self, request: pb.SessionRequest, context: grpc.aio.ServicerContext) -> pb.SessionAnswer:
        return self._answer(request)

    async def Authorize(self, request: pb.AuthorizeRequest, context: grpc.aio.ServicerContext) -> pb.AuthorizeAnswer:
        return self._authorized

    async def Stream(self, request_iterator, context: grpc.aio.ServicerContext):
        async for request in request_iterator:
            yield pb.StreamAnswer(correlation_id=request.correlation_id, session=self._answer(request.start))


async def serve(port: int, ready: multiprocessing.synchronize.Event | None = None) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    pb_grpc.add_ChargingServicer_to_server(EchoCharging(), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        raise SystemExit(f"echo server: cannot listen on 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    else:
        print(f"READY {port} {os.getpid()}", flush=True)
    await stop.wait()
    await server.stop(grace=1.0)


def _worker(port: int, ready: multiprocessing.synchronize.Event) -> None:
    uvloop.run(serve(port, ready))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gRPC echo server: the ceiling of occ.v1.Charging on grpc.aio")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default 1)")
    args = parser.parse_args(argv)
    if args.workers <= 1:
        uvloop.run(serve(args.port))
        return 0

    # N workers: spawned (never forked after gRPC is loaded), each with its own server on the shared port.
    context = multiprocessing.get_context("spawn")
    workers = []
    for _ in range(args.workers):
        ready = context.Event()
        process = context.Process(target=_worker, args=(args.port, ready), daemon=True)
        process.start()
        workers.append((process, ready))
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process, _ in workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process, ready in workers:
        if not ready.wait(30) or not process.is_alive():
            stop(signal.SIGTERM, None)
            raise SystemExit("echo server: a worker did not start")
    print(f"READY {args.port} " + " ".join(str(process.pid) for process, _ in workers), flush=True)
    for process, _ in workers:
        process.join()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
