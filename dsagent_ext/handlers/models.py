"""``/api/models``: the models a user can pick now."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..governance.catalogue import ModelLister
from .base import DSAgentHandler


class ModelsHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Models allowed by the policy: the admin's list, providers with keys, the api_base's own."""
        lister: ModelLister = self.settings["dsagent_models"]
        self.reply(await lister.catalogue())
