"""``occ health``: ask a running server's gRPC health service whether it serves (the container's HEALTHCHECK).

Exits 0 when the answer is SERVING, 1 otherwise (NOT_SERVING while stopping, an unknown service, no server).
"""

from __future__ import annotations

import click
from grpc_health.v1 import health_pb2, health_pb2_grpc

from occ.cli.connection import Target, channel_to, charging_options


@click.command()
@click.option("--service", default="", help="A service's full name (occ.v1.Charging)  [default: the whole server]")
@click.option("--timeout-s", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
              help="Give up after this long.")  # fmt: skip
@charging_options
def health(service: str, timeout_s: float, target: Target) -> None:
    """Check that the server at --server is SERVING (gRPC health); exit status 0 if so, 1 if not."""
    with channel_to(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    click.echo(f"{target.address}{' ' + service if service else ''}: {status}")
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        raise click.exceptions.Exit(1)
