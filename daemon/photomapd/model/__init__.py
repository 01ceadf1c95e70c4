"""The CLIP model: embedding (the only torch importer) and the daemon's model thread."""
