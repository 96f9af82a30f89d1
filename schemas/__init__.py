"""Declarative schemas of the customer record."""
