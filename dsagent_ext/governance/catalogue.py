"""The models a user can pick now, for the panel's picker and any client's.

Three sources, in this order: the admin's list (``models``), the chat models litellm knows for each
provider whose key the server has (newest first, a few per provider), and what an OpenAI-compatible
``api_base`` reports at ``/models``. With an ``api_base`` every call goes there, so provider models are
left out. Only models the policy allows are listed. The ``api_base`` is asked with a short timeout and
its answer cached: a dead or hanging endpoint costs one short wait, then a ``warning``, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..engine.llm import PROVIDER_KEYS, load_litellm, missing_api_key, resolve_model
from ..models import CatalogueModel, ModelCatalogue
from ..settings import CatalogueSettings
from .policy import Policy

PER_PROVIDER = 12
FETCH_TIMEOUT = 3.0  # seconds for the api_base's model list: the picker must open fast
FRESH_FOR = 60.0  # seconds a model list is reused
RETRY_AFTER = 15.0  # seconds before a failed api_base is asked again
# dated snapshots, fine-tunes and models that are not for a chat agent (audio, search, images...)
_NOT_LISTED = re.compile(
    r"(^ft:|-\d{4}-\d{2}-\d{2}$|-\d{8}$|-\d{4}$|audio|search|realtime|tts|transcribe|image|embed|guard|"
    r"computer-use|robotics|deep-research|lyria|-exp|experimental|customtools|preview)"
)
# providers whose bare names litellm routes by itself: listed bare, as users know them
_BARE = frozenset({"openai", "anthropic"})


class ModelLister:
    """Builds the catalogue; keeps the api_base's list between requests."""

    def __init__(self, settings: CatalogueSettings, policy: Policy, log: logging.Logger) -> None:
        self.settings = settings
        self.policy = policy
        self.log = log
        self._remote: tuple[float, list[str], str | None] | None = None  # (fetched at, ids, warning)
        self._fetching: asyncio.Future[tuple[list[str], str | None]] | None = None

    async def catalogue(self) -> ModelCatalogue:
        litellm = await load_litellm()
        settings = self.settings
        prices: dict[str, Any] = litellm.model_cost
        entries: dict[str, CatalogueModel] = {}

        def add(model_id: str, source: str, provider: str | None = None) -> None:
            model_id = model_id.strip()
            if model_id and model_id not in entries and self.policy.allows_model(model_id):
                entries[model_id] = self._entry(model_id, source, provider, prices)

        for model_id in settings.models:
            add(model_id, "admin")
        add(settings.default_model, "admin")
        warning = None
        if settings.api_base:
            remote, warning = await self._remote_models()
            for model_id in remote:
                add(model_id if "/" not in model_id else f"openai/{model_id}", "api_base", "api_base")
        else:
            for provider, model_id in provider_models(prices):
                add(model_id, "provider", provider)
        return ModelCatalogue(models=list(entries.values()), default_model=settings.default_model, warning=warning)

    def _entry(self, model_id: str, source: str, provider: str | None, prices: dict[str, Any]) -> CatalogueModel:
        api_base = self.settings.api_base
        resolved = resolve_model(model_id, api_base)
        info = prices.get(resolved) or prices.get(model_id) or prices.get(model_id.split("/", 1)[-1]) or {}
        if provider is None:
            prefix = resolved.split("/", 1)[0] if "/" in resolved else ""
            provider = "api_base" if api_base and prefix == "openai" and "/" not in model_id else (
                info.get("litellm_provider") or prefix or "openai"
            )
        missing = missing_api_key(model_id, api_base)
        return CatalogueModel(
            id=model_id,
            provider=provider,
            label=model_id.split("/", 1)[1] if "/" in model_id else model_id,  # the provider is shown apart
            available=missing is None,
            missing_api_key=missing,
            default=model_id == self.settings.default_model,
            source=source,
            context_window=info.get("max_input_tokens") or info.get("max_tokens"),
            input_usd_per_million=_per_million(info.get("input_cost_per_token")),
            output_usd_per_million=_per_million(info.get("output_cost_per_token")),
        )

    async def _remote_models(self) -> tuple[list[str], str | None]:
        """The api_base's models, fresh or cached; concurrent requests share one fetch."""
        now = time.monotonic()
        if self._remote is not None:
            fetched, ids, warning = self._remote
            if now - fetched < (RETRY_AFTER if warning else FRESH_FOR):
                return ids, warning
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.ensure_future(self._fetch())
        ids, warning = await asyncio.shield(self._fetching)
        self._remote = (time.monotonic(), ids, warning)
        return ids, warning

    async def _fetch(self) -> tuple[list[str], str | None]:
        url = f"{self.settings.api_base.rstrip('/')}/models"
        headers = {"Accept": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        try:
            response = await AsyncHTTPClient().fetch(
                url, headers=headers, connect_timeout=FETCH_TIMEOUT, request_timeout=FETCH_TIMEOUT
            )
            data = json.loads(response.body)["data"]
            return sorted({str(item["id"]) for item in data}), None
        except HTTPClientError as e:
            reason = "no answer within %gs" % FETCH_TIMEOUT if e.code == 599 else f"HTTP {e.code}"
        except OSError as e:  # refused, unreachable, unknown host
            reason = str(e)
        except Exception:  # anything else is an answer that is not an OpenAI model list
            reason = "an invalid model list"
        self.log.warning("DSAgent: model list of %s unavailable: %s", url, reason)
        return [], f"The model server at api_base did not list its models ({reason}); type a model name instead."


def provider_models(prices: dict[str, Any]) -> list[tuple[str, str]]:
    """``(provider, id)`` of chat models for each provider whose key is set: newest first (litellm
    appends new models to its map), priced, without snapshots, previews and specialised variants,
    ``PER_PROVIDER`` each."""
    chosen: list[tuple[str, str]] = []
    for provider, keys in PROVIDER_KEYS.items():
        if not any(os.environ.get(key, "").strip() for key in keys):
            continue
        ids: list[str] = []
        for name, info in reversed(prices.items()):
            if info.get("litellm_provider") != provider or info.get("mode") != "chat" or _NOT_LISTED.search(name):
                continue
            if info.get("input_cost_per_token") is None:  # not a model litellm can bill: an alias or a tool
                continue
            bare = name.split("/", 1)[1] if name.startswith(f"{provider}/") else name
            model_id = bare if provider in _BARE else f"{provider}/{bare}"
            if model_id not in ids:
                ids.append(model_id)
            if len(ids) == PER_PROVIDER:
                break
        chosen.extend((provider, model_id) for model_id in ids)
    return chosen


def _per_million(per_token: Any) -> float | None:
    return round(float(per_token) * 1_000_000, 6) if isinstance(per_token, (int, float)) else None
