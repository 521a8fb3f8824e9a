"""See bench.py."""
