"""Sign in with Adobe (IMS OAuth, PKCE), tokens in the OS keychain, silent refresh. No Qt here."""
