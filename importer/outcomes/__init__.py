"""Outcomes: row errors held as columns, failed rows, a run's result."""
