"""focus/sip."""
