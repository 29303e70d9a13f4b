"""Loopback captures with dumpcap and their decoding by Wireshark's own Diameter dissector (tshark).

A capture records the TCP port of OCC's Diameter listener; decoding tells Wireshark that port carries Diameter
(``-d tcp.port==N,diameter``: its default is 3868 only). Expert information is what the dissector flags: malformed
packets, and messages of severity error (a wrong AVP length, a missing mandatory AVP …). Frames are told apart by
direction, so a peer's own defect (Kamailio's 6.5-byte MAC in User-Equipment-Info) is not taken for OCC's.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import msgspec
from diameter.message import Message
from peer_processes import PeerProcess

EXPERT_ERROR = 0x800000  # Wireshark's PI_ERROR; PI_WARN is 0x600000
SEVERITIES = {0x200000: "chat", 0x400000: "note", 0x600000: "warn", EXPERT_ERROR: "error"}


class Problem(msgspec.Struct, frozen=True):
    """One expert item of one frame.

    Attributes:
        frame: the frame number in the capture.
        from_port: the TCP source port of the frame (OCC's listening port for what OCC sent).
        severity: chat, note, warn or error.
        message: Wireshark's summary, e.g. "Invalid User-Equipment-Info-Value length".
        command: the Diameter command code of the frame (0 when the frame did not decode that far).
    """

    frame: int
    from_port: int
    severity: str
    message: str
    command: int


class Capture:
    """dumpcap on the loopback interface, limited to one TCP port, written to ``path``; use as a context manager."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self._dumpcap: PeerProcess | None = None

    def __enter__(self) -> Capture:
        self._dumpcap = PeerProcess(
            "dumpcap",
            ["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {self.port}", "-w", str(self.path)],
            self.path.with_suffix(".dumpcap.log"),
        )
        self._dumpcap.wait_for("the capture started", self.path.exists, timeout_s=30)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._dumpcap is not None
        self._dumpcap.stop(signal.SIGINT)  # dumpcap flushes and closes the file on SIGINT

    def tshark(self, *args: str) -> str:
        done = subprocess.run(
            ["tshark", "-n", "-r", str(self.path), "-d", f"tcp.port=={self.port},diameter", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"tshark {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return done.stdout

    def fields(self, display_filter: str, *fields: str) -> list[list[str]]:
        """One row per frame matching the display filter; a field with several occurrences is joined with "|"."""
        text = self.tshark(
            "-Y",
            display_filter,
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            *(f"-e{f}" for f in fields),
        )
        return [line.split("\t") for line in text.splitlines()]

    def commands(self) -> list[tuple[int, int, bool]]:
        """Every Diameter message: (source port, command code, is a request), in capture order."""
        rows = self.fields("diameter", "tcp.srcport", "diameter.cmd.code", "diameter.flags.request")
        messages = []
        for port, codes, requests in rows:  # one TCP segment may carry several messages
            for code, request in zip(codes.split("|"), requests.split("|"), strict=True):
                messages.append((int(port), int(code), request in ("1", "True")))
        return messages

    def messages(self) -> list[tuple[int, Message]]:
        """Every Diameter message as (source port, message decoded by python-diameter), in capture order: the
        witness of what the peers said (loopback segments are large, so each carries whole messages)."""
        found = []
        for port, payload in self.fields("tcp.len > 0", "tcp.srcport", "tcp.payload"):
            data = bytes.fromhex(payload.replace(":", ""))
            while len(data) >= 20:
                length = int.from_bytes(data[1:4], "big")
                found.append((int(port), Message.from_bytes(data[:length])))
                data = data[length:]
        return found

    def problems(self) -> list[Problem]:
        """Every expert item and malformed frame Wireshark's dissectors report in the capture."""
        rows = self.fields(
            "_ws.expert || _ws.malformed", "frame.number", "tcp.srcport", "_ws.expert.severity", "_ws.expert.message",
            "diameter.cmd.code",
        )  # fmt: skip
        found = []
        for frame, port, severities, messages, commands in rows:
            command = int(commands.split("|")[0]) if commands else 0
            for severity, message in zip(severities.split("|"), messages.split("|"), strict=False):
                name = SEVERITIES.get(int(severity), severity) if severity else "error"
                found.append(Problem(int(frame), int(port), name, message or "malformed", command))
        return found
