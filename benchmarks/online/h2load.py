"""Peak mode: raw throughput with ``h2load`` (nghttp2's HTTP/2 load generator, in C), when it is installed.

Python load processes cost the machine about as much CPU per request as the server they load, so on a small machine
they cap the closed-loop figures. ``h2load`` costs a fraction of that: it sends one pre-encoded gRPC message — the
5-byte gRPC frame header (no compression, 4-byte big-endian length) and a protobuf ``AuthorizeRequest`` — as the
body of ``POST /occ.v1.Charging/Authorize`` with ``content-type: application/grpc`` and ``te: trailers``, over
``clients`` connections with ``streams`` requests in flight on each, for ``seconds``.

Why ``Authorize``: h2load repeats the very same body, and ``Authorize`` is the one charging request for which a
repeat is ordinary work (it rates the call and reads the account, and reserves nothing); a repeated start would be
a duplicate answered from the stored answer. The echo server answers it with a canned answer.

What it measures, honestly: h2load counts HTTP/2 responses and their HTTP status. A gRPC error travels in the
trailers with HTTP status 200, which h2load counts as a success. So the run also sends the same request once
through grpcio and reports its gRPC status and result code: the figure stands only when that one is OK/SUCCESS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import grpc

from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc as pb_grpc

PATH = "/occ.v1.Charging/Authorize"
TIMEOUT_MARGIN_S = 30.0


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message: flag 0, 4-byte big-endian length, the protobuf bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def authorize_request(subscriber: str, called: str) -> pb.AuthorizeRequest:
    return pb.AuthorizeRequest(subscriber=subscriber, called_party=called, service=pb.VOICE, max_units=3600)


def grpc_check(target: str, request: pb.AuthorizeRequest) -> str:
    """The same request once through grpcio: ``OK SUCCESS`` when all is right, else what came back."""
    with grpc.insecure_channel(target) as channel:
        try:
            answer = pb_grpc.ChargingStub(channel).Authorize(request, timeout=10)
        except grpc.RpcError as error:
            return error.code().name
    return f"OK {pb.ResultCode.Name(answer.result_code)}"


def parse(output: str) -> dict[str, float]:
    """The figures of h2load's report: req/s, requests done, succeeded and failed, 2xx, latency (ms)."""
    figures: dict[str, float] = {}
    if match := re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output):
        figures["requests_per_s"] = float(match.group(1))
    if match := re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", output):
        figures |= {"done": int(match.group(3)), "succeeded": int(match.group(4)), "failed": int(match.group(5))}
    if match := re.search(r"status codes: (\d+) 2xx", output):
        figures["http_2xx"] = int(match.group(1))
    if match := re.search(r"time for request:\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)", output):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        figures["min_ms"] = float(match.group(1)) * scale.get(match.group(2), 1.0)
        figures["max_ms"] = float(match.group(3)) * scale.get(match.group(4), 1.0)
        figures["mean_ms"] = float(match.group(5)) * scale.get(match.group(6), 1.0)
    return figures


def installed() -> bool:
    return shutil.which("h2load") is not None


def measure(target: str, request: pb.AuthorizeRequest, *, seconds: float, clients: int, streams: int,
            warmup_s: float = 1.0) -> dict[str, object]:  # fmt: skip
    """Run h2load against ``target`` (host:port on loopback) for ``seconds``; its figures and the gRPC check."""
    executable = shutil.which("h2load")
    if executable is None:
        return {"status": "skipped", "reason": "h2load not installed: peak mode skipped"}
    check = grpc_check(target, request)
    with tempfile.TemporaryDirectory(prefix="occ_bench_h2load_") as temp:
        body = Path(temp) / "authorize.grpc"
        body.write_bytes(grpc_frame(request.SerializeToString()))
        command = [
            executable, "-D", f"{round(seconds * 1000)}ms", "--warm-up-time", f"{round(warmup_s * 1000)}ms",
            "-c", str(clients), "-m", str(streams), "-t", "1", "-d", str(body), "-H", "content-type: application/grpc",
            "-H", "te: trailers", f"http://{target}{PATH}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + warmup_s + TIMEOUT_MARGIN_S,
                              check=False)  # fmt: skip
    figures = parse(done.stdout)
    valid = done.returncode == 0 and check == "OK SUCCESS" and "requests_per_s" in figures
    return {
        "status": "measured" if valid else "invalid",
        "grpc_check": check,
        "command": " ".join(command),
        "clients": clients,
        "streams_per_client": streams,
        "seconds": seconds,
        **figures,
        **({} if valid else {"output_tail": (done.stdout + done.stderr).strip().splitlines()[-8:]}),
    }
