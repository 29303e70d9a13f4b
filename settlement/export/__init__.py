"""Export of invoices and credit notes to the ERP middleware over SOAP, through an outbox."""
