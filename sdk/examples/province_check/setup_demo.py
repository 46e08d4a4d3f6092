"""Set up the province-check example in a unit, and optionally try it.

As the unit's administrator (an API client with ``tenant_admin``), this publishes the
``dang-ky-hien-mau`` form and workflow (whose ``kiem_tra_tu_dong`` state calls the receiver
``on_enter``), creates the unit's webhook signing key and an API client for the receiver
(``officer``: it reads basic personal data and takes the check's actions), and prints the
receiver's settings::

    python setup_demo.py setup --url https://nentang.example.gov.vn --tenant HN \\
        --client-id ... --client-secret ... --receiver-url https://hooks.hn.gov.vn/check
    # prints NENTANG_URL=..., NENTANG_CLIENT_ID=..., NENTANG_CLIENT_SECRET=...,
    #        NENTANG_WEBHOOK_SECRETS=...   -> the receiver's environment

    python setup_demo.py try --url ... --tenant HN --client-id ... --client-secret ...
    # submits one eligible and one ineligible applicant: ELIGIBLE_CASE=..., INELIGIBLE_CASE=...
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nentang_sdk import Client

HERE = Path(__file__).resolve().parent
FORM, WORKFLOW = "dang-ky-hien-mau", "dang-ky-hien-mau"
ELIGIBLE = {"ho_ten": "Nguyễn Văn An", "ngay_sinh": "1990-05-17", "so_cccd": "001090012345"}
INELIGIBLE = {"ho_ten": "Trần Thị Bình", "ngay_sinh": "2015-01-01", "so_cccd": "12345"}


def definitions(receiver_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form and the workflow, its hook pointing at ``receiver_url``."""
    form = json.loads((HERE / "form.json").read_text(encoding="utf-8"))
    text = (HERE / "workflow.json").read_text(encoding="utf-8")
    workflow = json.loads(text.replace("{{RECEIVER_URL}}", receiver_url))
    return form, workflow


def setup(url: str, tenant: str, client_id: str, client_secret: str,
          receiver_url: str) -> dict[str, str]:
    """Publish the form and workflow at ``tenant``, make the signing key and the receiver's
    API client; returns the receiver's environment."""
    form, workflow = definitions(receiver_url)
    with Client(url, client_id=client_id, client_secret=client_secret) as nentang:
        nentang.forms.create(tenant, definition=form)
        nentang.forms.publish(tenant, FORM, 1)
        nentang.workflows.create(tenant, definition=workflow)
        nentang.workflows.publish(tenant, WORKFLOW, 1)
        key = nentang.webhook_secrets.rotate(tenant, overlap_seconds=3600)
        receiver = nentang.clients.create(tenant, name="Kiểm tra tự động (hook receiver)",
                                          roles=["officer"])
    return {"NENTANG_URL": url, "NENTANG_CLIENT_ID": receiver.client_id,
            "NENTANG_CLIENT_SECRET": str(receiver.client_secret),
            "NENTANG_WEBHOOK_SECRETS": str(key.secret)}


def submit(url: str, tenant: str, client_id: str, client_secret: str,
           data: dict[str, Any]) -> str:
    """Submit an application; returns the case it opened (in ``kiem_tra_tu_dong``)."""
    with Client(url, client_id=client_id, client_secret=client_secret) as nentang:
        made = nentang.submissions.create(tenant, form=FORM, data=data)
    return str(made.case)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["setup", "try"],
                        help="setup: publish and print the receiver's settings; try: submit "
                             "an eligible and an ineligible application")
    parser.add_argument("--url", required=True, help="the platform's base URL")
    parser.add_argument("--tenant", required=True, help="the unit's code")
    parser.add_argument("--client-id", required=True, help="an API client with tenant_admin")
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--receiver-url", help="where the platform reaches the receiver "
                        "(setup)")
    args = parser.parse_args(argv)
    if args.command == "setup":
        if not args.receiver_url:
            parser.error("setup needs --receiver-url")
        env = setup(args.url, args.tenant, args.client_id, args.client_secret,
                    args.receiver_url)
        for name, value in env.items():
            print(f"{name}={value}")
        return 0
    for label, data in (("ELIGIBLE", ELIGIBLE), ("INELIGIBLE", INELIGIBLE)):
        case = submit(args.url, args.tenant, args.client_id, args.client_secret, data)
        print(f"{label}_CASE={case}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
