"""Reading one level of AVPs the way the base protocol wants it checked: a required AVP that is missing is 5005
(MISSING_AVP), one that occurs more often than allowed 5009, a value that does not decode 5004 (INVALID_AVP_VALUE),
an AVP with the M bit that OCC's dictionary does not know 5001 (AVP_UNSUPPORTED); each with the AVP at fault for
Failed-AVP (an empty one of the right code when it is missing).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import Any

from diameter.message import Avp
from diameter.message.avp.avp import AvpGrouped, get_avp_dictionary_entry
from diameter.message.avp.errors import AvpDecodeError

from occ.diameter.protocol import ProtocolError, Result

Key = tuple[int, int]
"""(AVP code, vendor id)."""


def name_of(code: int, vendor: int = 0) -> str:
    entry = get_avp_dictionary_entry(code, vendor)
    return entry["name"] if entry else f"AVP {code}" + (f" (vendor {vendor})" if vendor else "")


def value_of(avp: Avp) -> Any:
    """The decoded value; 5004 naming the AVP when it does not decode."""
    try:
        value = avp.value
        if isinstance(avp, AvpGrouped):
            for inner in value:  # a grouped AVP is valid only if every AVP inside it is
                value_of(inner)
        return value
    except (AvpDecodeError, ValueError, IndexError, OverflowError, struct.error) as error:
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(avp.code, avp.vendor_id)}: {error}", avp) from None


def _list_of(avp: Avp) -> Any:
    """A grouped AVP's AVPs, their own values left undecoded; 5004 when the group itself does not decode."""
    try:
        return avp.value
    except (AvpDecodeError, struct.error) as error:
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(avp.code, avp.vendor_id)}: {error}", avp) from None


class Avps:
    """One level of a message's AVPs (the command's, or a grouped AVP's), looked up by (code, vendor)."""

    def __init__(self, avps: list[Avp]) -> None:
        self.list = avps
        self._by_key: dict[Key, list[Avp]] = defaultdict(list)
        for avp in avps:
            self._by_key[(avp.code, avp.vendor_id)].append(avp)

    def refuse_unknown_mandatory(self) -> None:
        """5001 for the first AVP with the M bit that the dictionary does not know."""
        for avp in self.list:
            if avp.is_mandatory and get_avp_dictionary_entry(avp.code, avp.vendor_id) is None:
                raise ProtocolError(Result.AVP_UNSUPPORTED, f"{name_of(avp.code, avp.vendor_id)} is not supported", avp)

    def one(self, code: int, vendor: int = 0, *, required: bool = False) -> Avp | None:
        """The AVP if it occurs once; None if it does not occur (5005 when ``required``); 5009 if more than once."""
        found = self._by_key.get((code, vendor), ())
        if len(found) > 1:
            raise ProtocolError(Result.AVP_OCCURS_TOO_MANY_TIMES, f"{name_of(code, vendor)} occurs {len(found)} times",
                                found[1])  # fmt: skip
        if not found:
            if required:
                raise ProtocolError(Result.MISSING_AVP, f"{name_of(code, vendor)} is missing", example_of(code, vendor))
            return None
        return found[0]

    def get(self, code: int, vendor: int = 0, *, required: bool = False, default: Any = None) -> Any:
        """The decoded value of an AVP that may occur at most once (``default`` when absent)."""
        avp = self.one(code, vendor, required=required)
        return default if avp is None else value_of(avp)

    def text(self, code: int, vendor: int = 0, *, required: bool = False) -> str:
        """A UTF8String or DiameterIdentity (OctetString) value as text; "" when absent."""
        value = self.get(code, vendor, required=required, default="")
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(code, vendor)} is not UTF-8 text",
                                    self.one(code, vendor)) from None  # fmt: skip
        return value

    def identity(self, code: int) -> str:
        """A required DiameterIdentity (Origin-Host, Origin-Realm) as text, where identical copies count as one:
        Kamailio's ims_charging writes its own Origin-Host and Origin-Realm and cdp adds them again, so its CCRs
        carry each twice with the same value. Copies that differ are still 5009."""
        found = self._by_key.get((code, 0), ())
        if len({avp.payload for avp in found}) == 1:
            return Avps(found[:1]).text(code, required=True)
        return self.text(code, required=True)

    def all(self, code: int, vendor: int = 0) -> list[Avp]:
        return list(self._by_key.get((code, vendor), ()))

    def group(self, code: int, vendor: int = 0, *, required: bool = False, strict: bool = True) -> Avps | None:
        """The AVPs inside a grouped AVP that may occur at most once; None when absent (``strict``: see
        :func:`inside`)."""
        avp = self.one(code, vendor, required=required)
        return None if avp is None else inside(avp, strict=strict)

    def groups(self, code: int, vendor: int = 0, *, strict: bool = True) -> list[tuple[Avp, Avps]]:
        """Every occurrence of a grouped AVP, with the AVPs inside it."""
        return [(avp, inside(avp, strict=strict)) for avp in self.all(code, vendor)]


def inside(avp: Avp, *, strict: bool = True) -> Avps:
    """The AVPs inside a grouped AVP (5004 when it does not decode as one); ``strict``: unknown mandatory ones are
    refused (5001). Service-Information is read leniently: OCC takes two addresses from a tree that network elements
    fill with vendor AVPs of their own, and refusing a call for one of those would help nobody."""
    value = value_of(avp) if strict else _list_of(avp)
    if not isinstance(value, list):
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(avp.code, avp.vendor_id)} is not grouped", avp)
    avps = Avps(value)
    if strict:
        avps.refuse_unknown_mandatory()
    return avps


def example_of(code: int, vendor: int = 0) -> Avp:
    """An AVP of the missing kind with an empty value, for Failed-AVP (RFC 6733 §7.5)."""
    avp = Avp(code, vendor)
    entry = get_avp_dictionary_entry(code, vendor)
    avp.is_mandatory = bool(entry and entry.get("mandatory"))
    return avp
