"""focus/xcon."""
