"""DSAgent as an MCP server: tools to hand the agent a task, follow it, approve its code and read what it
made, served by the official MCP SDK behind a Jupyter handler (``handlers/mcp.py``)."""
