"""What the team hears: Discord messages (outbox, coalescing, rate limits) and the daily
summary. No Qt here; the tray app only shows the settings and the health."""
