"""tripwire package."""
