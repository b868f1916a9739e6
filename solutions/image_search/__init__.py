"""Reverse image search: find stored images that look like a query image."""
