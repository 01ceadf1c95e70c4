"""Native messaging host, daemon lifecycle, install and start at login."""
