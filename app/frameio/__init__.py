"""Frame.io V4 client: the anti-corruption layer. Callers get the app's dataclasses, never JSON."""
