"""The agent engine: model protocol, prompt, LLM and kernel adapters, free of Tornado."""
