"""InvokeAI boards as albums (DESIGN §11): the server listing (source.py), the sync run (run.py), the poller that
keeps an album live (watch.py)."""
