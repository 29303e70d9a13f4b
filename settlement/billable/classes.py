"""Which billable item class an xDR goes to, from its service and ledger code. Pure.

The setting ``billable_item_classes`` is a comma-separated list of ``service:ledger_code=CLASS`` rules, either side
``*`` for any: ``voice:400000001=VOICE_LOCAL, voice:*=VOICE, *:400000009=PREPAID, *:*=OTHER``. The most specific rule
wins (service and ledger code, then service, then ledger code, then ``*:*``). An xDR without a service (a top-up,
a payment, an adjustment, a tax) has the service ``""``, matched by ``*`` only. Empty setting: every item is class
``OCC``. An item no rule matches is not exported (listed as unclassified).
"""

from __future__ import annotations

import re

import msgspec

SETTING = "billable_item_classes"
DEFAULT_CLASS = "OCC"
CLASS_PATTERN = re.compile(r"[A-Z0-9_]{1,30}")
ANY = "*"


class ClassMapError(ValueError):
    """The setting cannot be read; the message names it and the rule."""


class ClassMap(msgspec.Struct, frozen=True):
    """Rules (service, ledger code) → class; ``*`` matches anything."""

    rules: dict[tuple[str, str], str]

    def lookup(self, service: str, ledger_code: str) -> str | None:
        for key in ((service, ledger_code), (service, ANY), (ANY, ledger_code), (ANY, ANY)):
            if key in self.rules:
                return self.rules[key]
        return None


def parse(text: str) -> ClassMap:
    """The rules of the setting's ``text``; raises :class:`ClassMapError` naming the rule that is wrong."""
    if not text.strip():
        return ClassMap({(ANY, ANY): DEFAULT_CLASS})
    rules: dict[tuple[str, str], str] = {}
    for rule in (r.strip() for r in text.split(",")):
        match, _, item_class = rule.partition("=")
        service, colon, ledger_code = match.strip().partition(":")
        item_class = item_class.strip()
        if not colon or not service or not ledger_code or not CLASS_PATTERN.fullmatch(item_class):
            raise ClassMapError(f"{SETTING}: {rule!r} is not service:ledger_code=CLASS (CLASS: 1-30 of A-Z 0-9 _; "
                                "* for any service or ledger code)")  # fmt: skip
        key = (service.strip(), ledger_code.strip())
        if key in rules:
            raise ClassMapError(f"{SETTING}: {match.strip()} is mapped twice")
        rules[key] = item_class
    return ClassMap(rules)
