"""focus/core."""
