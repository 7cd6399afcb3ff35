"""``dsagent serve``: a headless Jupyter server running only this extension, at the DSAgent URLs.

It is a Jupyter server, so any ``--ServerApp.*`` / ``--DSAgent.*`` option or config file works too;
``--host``/``--port`` are shorthands. The API key (DSAGENT_API_KEY) doubles as the Jupyter token so the
server's own routes (``/api/kernels``, ``/api/contents``...) are closed to whoever lacks it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

# the reference's names -> Jupyter's (traitlets knows WARN, not WARNING)
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only listens on this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="dsagent", description="DSAgent for Jupyter")
    commands = cli.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the DSAgent API server (a headless Jupyter server)",
        description="Run the DSAgent REST/SSE/WebSocket API at /health, /api/sessions, /ws/chat/{id}. "
        "Other arguments are passed to the Jupyter server (e.g. --ServerApp.root_dir=DIR, --gateway-url=URL).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", "-p", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--reload", action="store_true", help="restart the server when Python files change")
    serve.add_argument("--log-level", choices=list(LOG_LEVELS), default="info")
    bridge = commands.add_parser(
        "mcp",
        help="a stdio MCP server forwarding to a Jupyter server's DSAgent MCP endpoint (for Claude Desktop)",
        description="Serve MCP on stdin/stdout, forwarding to URL/dsagent/mcp (or to URL itself when it ends in /mcp). "
        "Without --url, DSAGENT_MCP_URL, else the first Jupyter server running on this machine.",
    )
    bridge.add_argument("--url", help="the Jupyter server's URL, e.g. http://127.0.0.1:8888/ (or the MCP endpoint's)")
    bridge.add_argument("--token", help="the server's (or JupyterHub's) API token; default DSAGENT_TOKEN or JUPYTER_TOKEN")
    bridge.add_argument("--api-key", help="DSAgent's API key (X-API-Key); default DSAGENT_API_KEY")
    return cli


def server_argv(args: argparse.Namespace, extra: list[str], api_key: str | None) -> list[str]:
    """Jupyter server options for a headless, root-mounted DSAgent."""
    argv = [
        f"--ServerApp.ip={args.host}",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.log_level={LOG_LEVELS[args.log_level]}",
        f"--IdentityProvider.token={api_key or ''}",
        "--ServerApp.password=",
        "--ServerApp.default_url=/docs",
        # REST clients have no XSRF cookie; browsers stay blocked by the Origin check
        "--ServerApp.disable_check_xsrf=True",
        "--DSAgent.mount_at_root=True",
    ]
    if args.reload:
        argv.append("--ServerApp.autoreload=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    return argv + extra


def main(argv: list[str] | None = None) -> None:
    args, extra = parser().parse_known_args(argv)
    if args.command == "mcp":
        from .mcp.stdio import main as bridge

        bridge(args.url, args.token, args.api_key)
        return
    api_key = os.environ.get("DSAGENT_API_KEY", "").strip() or None
    if not api_key and not is_loopback(args.host):
        sys.exit(
            f"dsagent serve: refusing to listen on {args.host} without an API key, which would let anyone "
            "on the network run code. Set one, e.g. `export DSAGENT_API_KEY=$(openssl rand -hex 24)`, "
            "or listen on 127.0.0.1."
        )
    from jupyter_server.serverapp import ServerApp

    app = ServerApp.instance(jpserver_extensions={"dsagent_ext": True})
    app.initialize(argv=server_argv(args, extra, api_key), find_extensions=False)
    app.start()


if __name__ == "__main__":
    main()
