"""Routes of the DSAgent API, relative to the extension's URL prefix."""

from __future__ import annotations

from typing import Any

# permissive on purpose: ids and names are validated by the handlers, which answer with a clear error
SESSION = r"api/sessions/([^/]+)"
FILENAME = r"([^/]+)"


def route_table() -> list[tuple[str, Any]]:
    """``(pattern, handler)`` pairs; imported lazily so loading the extension stays cheap."""
    from . import artifacts, chat, claims, docs, files, health, hitl, kernel, models, policy, restore, sessions, ws

    return [
        (r"health", health.HealthHandler),
        (r"health/ready", health.ReadinessHandler),
        (r"openapi.json", docs.OpenAPIHandler),
        (r"docs", docs.DocsHandler),
        (r"api/models", models.ModelsHandler),
        (r"api/policy", policy.PolicyHandler),
        (r"api/sessions", sessions.SessionRootHandler),
        (SESSION, sessions.SessionHandler),
        (rf"{SESSION}/archive", sessions.ArchiveHandler),
        (rf"{SESSION}/export", sessions.ExportHandler),
        (rf"{SESSION}/notebook", sessions.NotebookHandler),
        (rf"{SESSION}/notebook/claim", claims.NotebookClaimHandler),
        (rf"{SESSION}/messages", sessions.MessagesHandler),
        (rf"{SESSION}/turns", sessions.TurnsHandler),
        (rf"{SESSION}/files", files.FilesHandler),
        (rf"{SESSION}/files/{FILENAME}", files.FileHandler),
        (rf"{SESSION}/artifacts", artifacts.ArtifactsHandler),
        (rf"{SESSION}/artifacts/{FILENAME}", artifacts.ArtifactHandler),
        (rf"{SESSION}/kernel", kernel.KernelHandler),
        (rf"{SESSION}/kernel/variables", kernel.VariablesHandler),
        (rf"{SESSION}/kernel/execute", kernel.ExecuteHandler),
        (rf"{SESSION}/kernel/reset", kernel.ResetHandler),
        (rf"{SESSION}/kernel/restore", restore.RestoreHandler),
        (rf"{SESSION}/chat", chat.ChatHandler),
        (rf"{SESSION}/chat/stream", chat.ChatStreamHandler),
        (rf"{SESSION}/chat/cancel", chat.CancelHandler),
        (rf"{SESSION}/hitl/status", hitl.StatusHandler),
        (rf"{SESSION}/hitl/approve", hitl.ApproveHandler),
        (rf"{SESSION}/hitl/reject", hitl.RejectHandler),
        (rf"{SESSION}/hitl/respond", hitl.RespondHandler),
        (r"ws/chat/([^/]+)", ws.ChatWebSocket),
    ]
