"""How PostFlow fits into each desktop: start at login (no Qt here: the settings page calls it)."""
