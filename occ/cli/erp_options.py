"""The ERP settings of ``occ export`` and ``occ erp-gl``: the ``[erp]`` section, with the flags winning over it."""

from __future__ import annotations

import click

from occ.settings import Settings
from settlement.export.profile import ErpProfile
from settlement.export.security import ErpAuth


def url_of(settings: Settings, flag: str | None) -> str:
    """``--erp-url`` (or $OCC_ERP_URL), else ``erp.url``; a usage error naming both when neither is given."""
    url = flag or settings.erp.url
    if not url:
        raise click.UsageError("the ERP's URL is missing: give --erp-url (or $OCC_ERP_URL), or erp.url in the settings")
    return url


def auth_of(settings: Settings, *, username: str, password: str, wsse: str, cert_file: str | None,
            key_file: str | None, ca_file: str | None) -> ErpAuth:  # fmt: skip
    """OCC's credentials: each flag given wins over its ``erp.*`` setting. Raises ValueError naming the flag."""
    erp = settings.erp
    return ErpAuth(username=username or erp.username, password=password or erp.password,
                   wsse=(wsse or erp.wsse),  # type: ignore[arg-type]
                   cert_file=cert_file or erp.cert_file, key_file=key_file or erp.key_file,
                   ca_file=ca_file or erp.ca_file)  # fmt: skip


def profile_of(settings: Settings) -> ErpProfile:
    """How the ERP files documents: the fields of ``[erp]`` that :class:`ErpProfile` has (the same names)."""
    return ErpProfile(**{name: getattr(settings.erp, name) for name in ErpProfile.__struct_fields__})
