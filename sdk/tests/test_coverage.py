"""The SDK covers the whole API: every operation in the running service's OpenAPI document
has an SDK method (or is listed below with the reason it is not for SDK users), the SDK calls
no route the service lacks, its models are generated from this very document, and its version
speaks the service's API version."""

from __future__ import annotations

from pathlib import Path

import httpx
import nentang_sdk
from live_service import Service
from nentang_sdk import API_VERSION
from nentang_sdk._core import ROUTES
from nentang_sdk._modelgen import generate

NOT_FOR_SDK = {
    ("POST", "/oauth/authorize"): "the sign-in form, posted by the official's browser",
    ("GET", "/oauth/federated"): "a browser redirect to the unit's identity provider",
    ("GET", "/oauth/federated/callback"): "the identity provider's redirect back, in the browser",
    ("POST", "/callbacks/signing/{tenant}/{signature_id}"): "called by the remote signing "
                                                             "service, not by integrators",
}
METHODS = {"get", "post", "put", "patch", "delete"}


def _openapi(service: Service) -> dict[str, object]:
    answer = httpx.get(f"{service.base_url}/openapi.json", trust_env=False)
    assert answer.status_code == 200
    document: dict[str, object] = answer.json()
    return document


def _operations(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, item in paths.items() for method in item
            if method in METHODS}


def test_every_operation_has_an_sdk_method(service: Service) -> None:
    operations = _operations(_openapi(service))
    missing = sorted(operations - set(ROUTES) - set(NOT_FOR_SDK))
    assert not missing, "operations without an SDK method:\n" + "\n".join(
        f"  {m} {p}" for m, p in missing)
    stale = sorted(set(ROUTES) - operations)
    assert not stale, f"SDK methods calling routes the service does not have: {stale}"
    assert set(NOT_FOR_SDK) <= operations, "an exclusion names a route that no longer exists"
    assert not set(NOT_FOR_SDK) & set(ROUTES)


def test_models_are_generated_from_the_services_document(service: Service) -> None:
    committed = (Path(nentang_sdk.__file__).parent / "models.py").read_text(encoding="utf-8")
    assert generate(_openapi(service)) == committed, (
        "models.py is out of date: regenerate it with "
        "`python -m nentang_sdk._modelgen openapi.json > sdk/src/nentang_sdk/models.py`")


def test_the_sdk_speaks_the_services_api_version(service: Service) -> None:
    info = _openapi(service)["info"]
    assert isinstance(info, dict)
    assert ".".join(str(info["version"]).split(".")[:2]) == API_VERSION
    assert nentang_sdk.__version__.startswith(f"{API_VERSION}.")
