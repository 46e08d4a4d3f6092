"""The README's quick start works as written: its code blocks run against the live service
(with the unit code ``HN`` replaced by a fresh unit's), and the others at least compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from live_service import Service
from nentang_sdk import Client
from sdk_helpers import client_in, new_unit

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def _block(starting: str) -> str:
    found = [b for b in BLOCKS if starting in b]
    assert len(found) == 1, starting
    return found[0]


def test_every_python_block_compiles() -> None:
    assert len(BLOCKS) >= 6
    for number, block in enumerate(BLOCKS):
        compile(block, f"README block {number}", "exec")


def test_the_quick_start_runs(admin: Client, service: Service,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    sys.path.insert(0, str(README.parent / "examples"))
    import demo_process

    unit = new_unit(admin, service)
    with unit.client() as owner:
        demo_process.publish(owner, unit.code)
    portal = client_in(admin, service, unit.code, ["api_client"])
    monkeypatch.setenv("NENTANG_URL", service.base_url)
    monkeypatch.setenv("NENTANG_CLIENT_ID", portal.client_id)
    monkeypatch.setenv("NENTANG_CLIENT_SECRET", portal.client_secret)

    credentials = _block("admin.clients.create").replace('"HN"', repr(unit.code))
    credentials = credentials.replace('"https://nentang.example.gov.vn"', repr(service.base_url))
    credentials = credentials.replace('"<admin id>"', repr(service.admin_client_id))
    credentials = credentials.replace('"<admin secret>"', repr(service.admin_client_secret))
    exec(compile(credentials, "README: credentials", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.startswith("ntc_")

    calls = _block("nentang.submissions.create").replace('"HN"', repr(unit.code))
    exec(compile(calls, "README: calls", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert demo_process.FORM_KEY in printed
    assert "tiep_nhan ['tiep_nhan_ho_so']" not in printed  # an api_client may not act
    assert "tiep_nhan []" in printed

    asynchronous = _block("asyncio.run(main())").replace('"HN"', repr(unit.code))
    exec(compile(asynchronous, "README: async", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.count("\n") == 1
