"""The database: every table, the stored customers, matching, the loader, the run ledger."""
