"""Billable-item export in the shape SAP Convergent Invoicing takes (docs/erp-export.md, "Billable items")."""
