"""See profile_cell.py."""
