"""The provider requests the agent's own model stream sends, as litellm builds them.

``prepare`` runs ``litellm.acompletion`` with a logging object that stops it at its pre-call hook,
the moment the provider request is final: litellm resolved the provider, key and base URL, mapped
the parameters and built the body and headers, exactly as it would send them. For the providers
litellm hands to an SDK client, what that client adds (path, query, auth header) is added here the
way the client adds it, and only in the configurations where the hook shows all the client uses.
"""

from __future__ import annotations

import datetime
import functools
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

# Providers whose requests litellm hands to the openai SDK: the captured ``api_base`` is the base
# URL, the SDK adds the path, the query and the key.
SDK_ROUTE = frozenset({"openai", "azure"})
# The fast-path providers and the wire format of the stream they answer with. Every provider but
# those of ``SDK_ROUTE`` goes through litellm's own HTTP handler: its captured request is complete.
WIRE = {
    "openai": "openai",
    "azure": "openai",
    "hosted_vllm": "openai",
    "groq": "openai",
    "deepseek": "openai",
    "xai": "openai",
    "together_ai": "openai",
    "openrouter": "openai",
    "mistral": "openai",
    "anthropic": "anthropic",
}
# Azure OpenAI API versions litellm sends to ``/openai/v1`` with a plain OpenAI client
_AZURE_V1 = frozenset({"v1", "latest", "preview"})
# with all three set, litellm gives the Azure client a token provider, whose Bearer token wins over the key
_AZURE_PASSWORD_AUTH = ("AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_CLIENT_ID")


@dataclass
class ModelRequest:
    """A provider request as litellm would send it, and what pricing the reply needs."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    provider: str
    model: str  # litellm's model name, for cost and error mapping
    wire: str  # "openai" or "anthropic"


class _Captured(BaseException):
    """Raised from litellm's pre-call hook; a BaseException so no ``except Exception`` in litellm
    turns it into a provider error or runs failure handlers."""

    def __init__(self, api_key: str | None, details: dict[str, Any]) -> None:
        super().__init__("request captured")
        self.api_key = api_key
        self.details = details


def provider_of(litellm: Any, model: str, api_base: str | None) -> str | None:
    """litellm's provider for this model, or None when litellm cannot tell."""
    try:
        return str(litellm.get_llm_provider(model=model, api_base=api_base)[1])
    except Exception:
        return None


async def prepare(litellm: Any, kwargs: dict[str, Any]) -> ModelRequest | None:
    """The streamed request litellm would send for ``kwargs``, or None when it has no fast path."""
    provider = provider_of(litellm, kwargs["model"], kwargs.get("api_base"))
    if provider not in WIRE:
        return None
    capture = _capture_class()(
        model=kwargs["model"], messages=kwargs["messages"], stream=True, call_type="acompletion",
        start_time=datetime.datetime.now(), litellm_call_id="capture", function_id="capture",
    )  # fmt: skip
    try:
        await litellm.acompletion(**kwargs, stream=True, litellm_logging_obj=capture)
    except _Captured as captured:
        return _request(litellm, captured, provider, kwargs)
    raise RuntimeError("litellm sent the request instead of handing it over")


@functools.cache
def _capture_class() -> type:
    """litellm's logging object, stopping the call at its pre-call hook (defined once litellm is loaded)."""
    from litellm.litellm_core_utils.litellm_logging import Logging

    class Capture(Logging):
        def pre_call(self, input: Any, api_key: Any, model: Any = None, additional_args: Any = None) -> None:
            raise _Captured(api_key, dict(additional_args or {}))

    return Capture


def _request(litellm: Any, captured: _Captured, provider: str, kwargs: dict[str, Any]) -> ModelRequest | None:
    details = captured.details
    body = dict(details["complete_input_dict"])
    headers = {str(k): str(v) for k, v in (details.get("headers") or {}).items()}
    url = str(details["api_base"])
    if provider in SDK_ROUTE:  # what the SDK client does with litellm's arguments
        extra_headers = body.pop("extra_headers", None) or {}
        extra_query = body.pop("extra_query", None) or {}
        body.update(body.pop("extra_body", None) or {})
        if provider == "azure":
            route = _azure_route(litellm, captured, url, body, kwargs)
        else:
            route = _openai_route(captured, url, headers)
        if route is None:
            return None
        url, headers, query = route
        headers.update({str(k): str(v) for k, v in extra_headers.items()})
        query.update(extra_query)
        url += f"?{urlencode(query)}" if query else ""
    body["stream"] = True
    model = kwargs["model"]
    return ModelRequest(url=url, headers=headers, body=body, provider=provider, model=model, wire=WIRE[provider])


_Route = tuple[str, dict[str, str], dict[str, Any]]  # URL, headers, query


def _openai_route(captured: _Captured, base_url: str, headers: dict[str, str]) -> _Route:
    """What the ``OpenAI`` client adds to litellm's base URL and headers: the path and the bearer key."""
    auth = {"Authorization": f"Bearer {captured.api_key}", "Content-Type": "application/json"}
    return base_url.rstrip("/") + "/chat/completions", {**auth, **headers}, {}


def _azure_route(
    litellm: Any, captured: _Captured, endpoint: str, body: dict[str, Any], kwargs: dict[str, Any]
) -> _Route | None:
    """URL, headers and query of the ``AzureOpenAI`` client litellm builds, for a key on a resource
    endpoint; None (litellm's own stream) for the rest: Entra ID tokens, ``/openai/v1`` API versions,
    endpoints that already name a deployment, gateways."""
    auth = captured.details.get("headers") or {}
    if auth.get("azure_ad_token") or not auth.get("api_key") or not captured.api_key:
        return None
    if all(os.environ.get(var) for var in _AZURE_PASSWORD_AUTH):
        return None
    if not endpoint or "/openai/deployments" in endpoint or "gateway.ai.cloudflare.com" in endpoint:
        return None
    # how litellm picks the version for the client (``_complete_azure``)
    version = (
        kwargs.get("api_version") or litellm.api_version or os.environ.get("AZURE_API_VERSION")
        or litellm.AZURE_DEFAULT_API_VERSION
    )  # fmt: skip
    if version in _AZURE_V1 or not body.get("model"):
        return None
    url = f"{endpoint.rstrip('/')}/openai/deployments/{quote(str(body['model']), safe='')}/chat/completions"
    return url, {"api-key": str(captured.api_key), "Content-Type": "application/json"}, {"api-version": version}
