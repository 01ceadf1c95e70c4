"""Everything that talks to an InvokeAI server (the only httpx importer)."""
