"""The Ray Data engine: indexing an album on a cluster into the same Lance table (DESIGN §12)."""
