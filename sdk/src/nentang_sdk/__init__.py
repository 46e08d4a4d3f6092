"""Nentang SDK: the Python client of the Nentang platform's REST API, and a toolkit for
provinces that extend it (signed webhook verification, hook receivers, project scaffolding).

    from nentang_sdk import Client

    with Client("https://nentang.example.gov.vn", client_id="...", client_secret="...") as nt:
        for case in nt.cases.list("HN", status="open"):
            print(case.id, case.state)
"""

from nentang_sdk._core import Download, Page
from nentang_sdk._retries import NO_RETRIES, RetryPolicy
from nentang_sdk._version import API_VERSION, __version__
from nentang_sdk.auth import BearerToken, ClientCredentials, UserSession, login_with_browser
from nentang_sdk.client import AsyncClient, Client
from nentang_sdk.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CaseChangedError,
    ConflictError,
    FieldError,
    GoneError,
    NentangError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
    WebhookVerificationError,
)

__all__ = [
    "API_VERSION", "NO_RETRIES", "APIError", "AsyncClient", "AuthenticationError",
    "BadRequestError", "BearerToken", "CaseChangedError", "Client", "ClientCredentials",
    "ConflictError", "Download", "FieldError", "GoneError", "NentangError", "NotFoundError",
    "Page", "PayloadTooLargeError", "PermissionDeniedError", "PreconditionFailedError",
    "PreconditionRequiredError", "RateLimitError", "RetryPolicy", "ServerError",
    "TransportError", "UserSession", "ValidationError", "WebhookVerificationError",
    "__version__", "login_with_browser",
]
