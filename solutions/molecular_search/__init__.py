"""Molecular similarity search: find molecules like a query structure."""
