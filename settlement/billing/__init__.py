"""Billing: billing cycles, taxes, statements (invoices), their numbering, states, documents and the ERP hand-off.

Pure parts (no SQL): :mod:`.amounts` (Decimal rounding), :mod:`.cycle` (periods), :mod:`.late` (late items and the
period they belonged to), :mod:`.tax`, :mod:`.statement` (xDRs → lines and totals), :mod:`.validate`,
:mod:`.parties` (seller and customer), :mod:`.erp` (invoice → ERP document) and :mod:`.tieout` (does a document tie
out to its invoice?). SQL parts: :mod:`.setup` (profiles, accounts, issuers), :mod:`.issue`, :mod:`.run`,
:mod:`.reissue`, :mod:`.posting`. Output: :mod:`.document` (text, CSV), :mod:`.pdf`.
"""
