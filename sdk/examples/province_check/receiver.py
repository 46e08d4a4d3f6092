"""A province's automated check step: the hook receiver of ``kiem_tra_tu_dong``.

When a blood-donation registration (``dang-ky-hien-mau``) enters ``kiem_tra_tu_dong``, the
platform POSTs a signed event here. The receiver reads the case through the API (with its own
API client's permissions: it needs ``personal_data:basic``, the ``officer`` role has it),
checks that the applicant is 18 or older and that the ID number has 12 digits, and takes
``dat`` (passed) or ``khong_dat`` (failed, with the reasons as the comment).

Run it (the settings come from ``setup_demo.py``)::

    export NENTANG_URL=... NENTANG_CLIENT_ID=... NENTANG_CLIENT_SECRET=...
    export NENTANG_WEBHOOK_SECRETS=whsec_...
    uvicorn receiver:app --port 8800
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from nentang_sdk.hooks import HookApp, HookContext

STATE = "kiem_tra_tu_dong"
PASSED, FAILED = "dat", "khong_dat"
ADULT = 18
ID_NUMBER = re.compile(r"[0-9]{12}")
CHECKED = ("ngay_sinh", "so_cccd")
VIETNAM = timezone(timedelta(hours=7))  # no daylight saving: a fixed offset is exact


def age(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on`` (a birthday not yet reached this year counts not)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def problems(data: Mapping[str, Any], today: date) -> list[str]:
    """Why the applicant does not qualify (in Vietnamese, for the case history); empty if
    they do. Pure, so it is tested without a platform."""
    found = []
    try:
        born = date.fromisoformat(str(data.get("ngay_sinh", "")))
    except ValueError:
        found.append("không đọc được ngày sinh")
    else:
        years = age(born, today)
        if years < ADULT:
            found.append(f"chưa đủ {ADULT} tuổi ({years} tuổi)")
    if not ID_NUMBER.fullmatch(str(data.get("so_cccd", ""))):
        found.append("số định danh cá nhân không gồm đúng 12 chữ số")
    return found


def today_in_vietnam(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(VIETNAM).date()


app = HookApp.from_env()


@app.on_enter(STATE)
async def check_applicant(ctx: HookContext) -> None:
    case = await ctx.case()
    hidden = [name for name in CHECKED if name in case.masked_fields]
    if hidden:
        # Deciding on '***' would reject every applicant: fail loudly (500) instead; the
        # platform retries once an admin gives the receiver's client the right role.
        raise PermissionError(f"the receiver's API client may not see {', '.join(hidden)}: "
                              "give it a role with personal_data:basic (e.g. officer)")
    found = problems(case.data, today_in_vietnam())
    if found:
        await ctx.act(FAILED, comment="Kiểm tra tự động: " + "; ".join(found) + ".")
    else:
        await ctx.act(PASSED, comment="Kiểm tra tự động: đủ tuổi, số định danh hợp lệ.")
