"""Plugin discovery and the lazy registry of generators and post-processors. No Qt, no torch."""
