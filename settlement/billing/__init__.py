"""Billing: billing cycles, taxes, statements (invoices), their numbering, states, documents and the ERP hand-off.

Pure parts (no SQL): :mod:`.amounts` (Decimal rounding), :mod:`.cycle` (periods), :mod:`.tax`, :mod:`.statement`
(xDRs → lines and totals), :mod:`.validate`. SQL parts: :mod:`.setup` (profiles, accounts), :mod:`.issue` (runs,
out-of-turn, re-issue, previews), :mod:`.posting`. Output: :mod:`.render` (text, CSV, PDF), :mod:`.erp`.
"""
