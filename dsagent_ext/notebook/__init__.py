"""The notebooks of sessions: attachment to a user's notebook, the agent's cells in it, the session's own notebook."""
