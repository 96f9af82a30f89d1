"""The analyst's review: the operations she performs (fixes, conversions, exclusions), look-alikes."""
