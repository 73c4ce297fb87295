"""Plain-Python core: requests, events, metadata, settings. No Qt, no torch."""
