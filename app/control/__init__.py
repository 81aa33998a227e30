"""The control endpoint: what automation and the ``postflow`` commands use to talk to a
running PostFlow (status, pause, resume, retry, cancel, metrics), never reachable from the
network. No Qt here."""
