"""Indexing: the folder scan and stat diff, index runs, and folder watching."""
