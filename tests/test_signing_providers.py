"""A province ships its own signing provider as a package: the platform finds it through the
``nentang.signing_providers`` entry points, without any change to Nentang itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.signing import providers

PROVIDER = '''
from app.signing.providers import Failed, Pending, Signed


class HanoiCAProvider:
    name = "hanoi-ca"
    polled = True
    config_schema = {"type": "object", "required": ["endpoint"],
                     "properties": {"endpoint": {"type": "string"},
                                    "api_key": {"type": "string", "writeOnly": True}}}

    def check_config(self, config):
        return None

    async def certificates(self, config, signer):
        return []

    async def start(self, config, request):
        return Failed("not-here", "a test double")

    async def status(self, config, transaction_id, state):
        return Failed("not-here", "a test double")


class NotAProvider:
    name = "broken"
'''


def _install(root: Path, points: str) -> None:
    """A minimal installed distribution: its module and its entry points."""
    (root / "hanoi_signing.py").write_text(PROVIDER)
    info = root / "hanoi_signing-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hanoi-signing\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{providers.GROUP}]\n{points}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    providers.available.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hanoi_signing", None)
        providers.available.cache_clear()


def test_a_provider_from_another_package_is_found(site: Path) -> None:
    _install(site, "hanoi-ca = hanoi_signing:HanoiCAProvider\n")
    found = providers.available()
    assert {"pkcs12", "client", "csc", "hanoi-ca"} <= set(found)
    assert providers.secret_fields(found["hanoi-ca"].config_schema) == {"api_key"}


def test_a_broken_package_is_left_out_and_logged_and_the_others_work(
        site: Path, caplog: pytest.LogCaptureFixture) -> None:
    _install(site, "broken = hanoi_signing:NotAProvider\nmissing = hanoi_signing:Nowhere\n"
             "hanoi-ca = hanoi_signing:HanoiCAProvider\n")
    found = providers.available()
    assert "broken" not in found and "missing" not in found and "hanoi-ca" in found
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "'broken' does not implement" in logged and "'missing' could not be loaded" in logged
