"""Settlement: draining event streams into xDRs, the ledger and billing runs (built in later issues)."""
