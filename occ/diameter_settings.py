"""The Diameter gateway's settings (``diameter_*`` in :class:`occ.settings.Settings`): the allowed-peer list and the
range checks, kept here so that the settings module stays one concept."""

from __future__ import annotations

import ipaddress
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_peers(text: str) -> dict[str, tuple[Network, ...]]:
    """``{"pgw.example.net": (IPv4Network("10.0.0.0/24"),)}`` from ``pgw.example.net=10.0.0.0/24`` (pairs
    comma-separated; one Origin-Host may appear with several addresses); ValueError naming the bad pair."""
    peers: dict[str, tuple[Network, ...]] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        host, sep, address = (item.strip() for item in pair.partition("="))
        if not sep or not host or not address:
            raise ValueError(f"{pair!r} is not origin-host=address")
        try:
            network = ipaddress.ip_network(address.strip("[]"), strict=False)
        except ValueError:
            raise ValueError(f"{pair!r}: {address!r} is not an IP address or network") from None
        peers[host] = (*peers.get(host, ()), network)
    return peers


def diameter_checks(s: Any) -> list[tuple[str, bool, str]]:
    """(field, whether it is fine, the message naming it) for the ``diameter_*`` settings of ``s``."""
    try:
        allowed_peers(s.diameter_peers)
        peers_problem = ""
    except ValueError as error:
        peers_problem = str(error)
    return [
        (
            "diameter_port",
            0 <= s.diameter_port <= 65535,
            f"diameter_port must be 0 (off) or 1–65535, got {s.diameter_port}",
        ),
        ("diameter_origin_host", bool(s.diameter_origin_host), "diameter_origin_host must not be empty"),
        ("diameter_origin_realm", bool(s.diameter_origin_realm), "diameter_origin_realm must not be empty"),
        ("diameter_peers", not peers_problem, f"diameter_peers: {peers_problem}"),
        (
            "diameter_watchdog_s",
            0.1 <= s.diameter_watchdog_s <= 3600,
            f"diameter_watchdog_s must be 0.1–3600, got {s.diameter_watchdog_s}",
        ),
    ]
