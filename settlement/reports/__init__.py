"""Reports for the accountant, read from the settlement store (docs/billing.md, "Ledger report")."""
