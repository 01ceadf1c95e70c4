"""The semantic map: layout (UMAP + placement), clusters and the binary payload."""
