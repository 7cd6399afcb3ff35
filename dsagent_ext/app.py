"""The DSAgent server extension: the wiring of services into handlers.

Its settings are traitlets (``settings/traits.py``, ``c.DSAgent.<name>``); each service receives the
narrow settings object it reads, and the services it calls, never the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join

from .auth import ApiKeyAuth
from .governance.catalogue import ModelLister
from .governance.policy import Policy
from .governance.spending import Spending
from .handlers import route_table
from .sessions.restore import RestoreService
from .sessions.runs import RunService
from .sessions.service import SessionService
from .settings.traits import DSAgentSettings
from .store.ledger import Ledger
from .store.workspace import Workspace


class DSAgent(ExtensionApp, DSAgentSettings):
    """An autonomous data-science agent working in the server's own kernels and files."""

    name = "dsagent_ext"
    description = __doc__
    extension_url = "/dsagent/"
    load_other_extensions = True
    mcp_service: Any = None  # the MCP server, when enabled

    def initialize_settings(self) -> None:
        """Check the settings, build each service from its settings object, and hand them to the handlers."""
        if self.require_api_key and not self.api_key:
            raise SystemExit(
                "DSAgent: DSAGENT_REQUIRE_API_KEY is set but no API key is configured. "
                "Set DSAGENT_API_KEY (or c.DSAgent.api_key)."
            )
        server = self.serverapp
        workspace = Workspace.under(Path(server.root_dir).resolve(), self.workspace_dir)
        policy = Policy(self.policy_settings())
        if not policy.allows_model(self.default_model):
            self.log.warning(
                "DSAgent: default_model %s is outside the model policy: sessions must name a model", self.default_model
            )
        self.session_service = SessionService(
            self.session_settings(),
            workspace,
            policy,
            contents_manager=server.contents_manager,
            kernel_manager=server.kernel_manager,
            session_manager=server.session_manager,
            kernel_spec_manager=server.kernel_spec_manager,
            log=self.log,
        )
        restores = RestoreService(self.restore_settings(), self.session_service, self.log)
        spending = Spending(self.spending_settings(), Ledger(workspace.sessions_dir.parent, self.log), self.log)
        self.run_service = RunService(
            self.run_settings(), self.session_service, restores, spending, server.contents_manager, self.log
        )
        self.session_service.route_model = self.run_service.check_route
        self.settings.update(
            dsagent=self.session_service,
            dsagent_runs=self.run_service,
            dsagent_restores=restores,
            dsagent_spending=spending,
            dsagent_models=ModelLister(self.catalogue_settings(), policy, self.log),
            dsagent_auth=ApiKeyAuth(self.api_key, required=self.mount_at_root),
            dsagent_api=self.api_settings(self.url_prefix),
        )
        if self.mcp_enabled:
            self.mcp_service = self._mcp_service()
        self.settings.update(dsagent_mcp=self.mcp_service)

    def _mcp_service(self) -> Any:
        """The MCP server, over the same services as the REST API (imported only when enabled)."""
        from .mcp.service import MCPService
        from .mcp.tools import Services

        server = self.serverapp
        services = Services(self.session_service, self.run_service, lambda: server.contents_manager, self.mcp_settings(), self.log)
        return MCPService(services, self.log)

    @property
    def url_prefix(self) -> str:
        """URL path under which every DSAgent route is served."""
        base = self.serverapp.base_url
        return base if self.mount_at_root else url_path_join(base, "dsagent")

    def initialize_handlers(self) -> None:
        """Register the routes; the server prepends its base_url to each pattern."""
        prefix = "/" if self.mount_at_root else "/dsagent"
        self.handlers.extend((url_path_join(prefix, pattern), handler) for pattern, handler in route_table())
        if self.mcp_enabled:
            from .handlers.mcp import MCPHandler

            self.handlers.append((url_path_join(prefix, "mcp/?"), MCPHandler))

    async def _start_jupyter_server_extension(self, serverapp: object) -> None:
        """Rebuild the notebooks a killed server left behind their logs (tasks it interrupted included),
        and add to attached notebooks the agent's cells no window wrote."""
        await self.session_service.notebooks.repair(self.session_service.loaded())
        for session in self.session_service.loaded():
            self.session_service.cells.catch_up_later(session)

    async def stop_extension(self) -> None:
        """Close MCP sessions, let running tasks end cleanly, then the model workers; kernels belong to the
        server's kernel manager."""
        if self.mcp_service is not None:
            await self.mcp_service.stop()
        await self.session_service.shutdown()
        await self.run_service.stop()
