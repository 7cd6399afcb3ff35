"""Sessions: the service that owns them, the live session, agent runs and kernel restores."""
