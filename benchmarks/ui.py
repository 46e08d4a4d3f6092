"""What the web UI adds on top of the API it calls: the time an official waits for a screen,
against the time the same browser takes to fetch that screen's main API answer.

    .venv/bin/python -m benchmarks.ui                  # about a minute
    .venv/bin/python -m benchmarks.ui --cases 200 --rounds 7

What one run does: starts Nentang on a fresh SQLite file (``nentang serve``, as the browser
tests do), sets up a province with a form and a two-step workflow, a commune whose admin works
cases, and ``--cases`` submissions waiting in that admin's inbox. It signs the admin in with
Debian's Chromium (Playwright) and then, in ``--rounds`` alternating rounds, times:

* **inbox**: from setting the address to ``#/<commune>/inbox`` until the table shows every
  task, against ``fetch('/api/v1/me/tasks?limit=500')`` and ``json()`` in the same page;
* **case view**: from the address of one case until its history is drawn (the screen reads
  the case, its submission, pinned form and workflow versions, history, signatures and
  attachments: 7 requests), against one ``fetch`` of the case;
* **shell**: a full reload of ``/admin`` (HTML, CSS, modules, catalogue, ``/me`` and the
  unit list) until the navigation shows, against one ``fetch`` of ``/api/v1/me``.

Reported: the median of each side over the rounds and the ratio UI / API (both measured from
Python around one Playwright call, so each side carries the same driver round trip), plus
the bytes of static files the shell loads.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk" / "tests"))
sys.path.insert(0, str(ROOT))
from live_service import running_service  # noqa: E402
from nentang_sdk import Client  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from app.ui.endpoints import STATIC_DIR  # noqa: E402
from benchmarks import ratios  # noqa: E402
from tests.ui import scenario  # noqa: E402
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, sign_in  # noqa: E402
from tests.ui.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, UiService  # noqa: E402

FETCH = """async (path) => {
  const token = JSON.parse(sessionStorage.getItem('nentang.session')).access;
  const response = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
  return (await response.json()) !== null;
}"""


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def shell_bytes() -> int:
    """HTML, CSS and the JavaScript modules of the shell and every screen."""
    return sum(p.stat().st_size for p in STATIC_DIR.rglob("*")
               if p.suffix in (".html", ".css", ".js"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    figures: dict[str, list[tuple[float, float]]] = {"inbox": [], "case view": [], "shell": []}
    with tempfile.TemporaryDirectory() as tmp, running_service("sqlite", Path(tmp)) as svc:
        ui = UiService(svc)
        with Client(svc.base_url, client_id=svc.admin_client_id,
                    client_secret=svc.admin_client_secret) as admin:
            admin.users.create(svc.root, username=ADMIN_USERNAME, display_name="Quản trị",
                               password=ADMIN_PASSWORD, roles=["tenant_admin"])
        where = scenario.commune(ui, scenario.province(ui))
        cases = [scenario.submit(ui, where.code) for _ in range(args.cases)]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page: Page = browser.new_page(viewport={"width": 1366, "height": 900})
            sign_in(page, svc.base_url, where.code, where.username, where.password)
            base = f"{svc.base_url}/admin#/{where.code}"

            def inbox() -> None:
                page.goto(f"{base}/units")
                page.locator("#unit-status").wait_for()
                figures["inbox"].append((
                    timed(lambda: page.evaluate(FETCH, "/api/v1/me/tasks?limit=500")),
                    timed(lambda: (page.goto(f"{base}/inbox"), page.locator(
                        f"tbody tr:nth-child({args.cases})").wait_for()))))

            def case_view() -> None:
                case_id = cases[len(figures["case view"]) % len(cases)]
                page.goto(f"{base}/units")
                page.locator("#unit-status").wait_for()
                figures["case view"].append((
                    timed(lambda: page.evaluate(
                        FETCH, f"/api/v1/tenants/{where.code}/cases/{case_id}")),
                    timed(lambda: (page.goto(f"{base}/cases/{case_id}"),
                                   page.locator("#history li").first.wait_for()))))

            def shell() -> None:
                figures["shell"].append((
                    timed(lambda: page.evaluate(FETCH, "/api/v1/me")),
                    timed(lambda: (page.reload(), page.locator("nav ul li").first.wait_for()))))

            for _ in range(args.rounds):
                inbox()
                case_view()
                shell()
            browser.close()

    report: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(),
                              "cases": args.cases, "rounds": args.rounds,
                              "static_bytes": shell_bytes(), "results": {}}
    report["results"] = ratios.report(figures, label="screen", baseline="api", measured="ui",
                                      digits=1)
    print(f"static files: {report['static_bytes'] / 1024:.0f} KiB (uncompressed)")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
