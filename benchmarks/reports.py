"""Report run time over a million submissions spread across the full tenant tree.

    .venv/bin/python -m benchmarks.reports            # from the repository root
    .venv/bin/python -m benchmarks.reports --count 100000 --rounds 3   # a quicker look
    .venv/bin/python -m benchmarks.reports --report benchmarks/out/reports-<time>.json

What one run does:

1. creates a fresh PostgreSQL database and fresh owner and service roles, migrated exactly
   as ``tests/conftest.py`` does (:meth:`benchmarks.run.Database.created`), and starts
   Nentang (``nentang serve``, one uvicorn worker, as the unprivileged service role);
2. bootstraps the platform, applies the whole of ``tenants/vietnam.json`` (3,356 tenants with
   the root) with ``nentang apply``, and, with the bootstrap platform-admin client, creates
   and publishes the catalogue form ``forms/ho-kinh-doanh`` at the root, so every tenant
   uses it; it also creates a ``tenant_admin`` client for province ``01``;
3. loads ``--count`` submissions (default 1,000,000) of that published version directly in
   SQL, as the superuser (so neither the API nor row security is in the way): one
   ``INSERT ... SELECT ... FROM generate_series``. Each row goes to a commune drawn with a
   weight of 1 to 5 (so communes differ in size), or, for about 5 % of the rows, to a
   province's own office. Its ``data`` is a complete, valid household-business application
   built in SQL: the kind of founder (70 % ``ca_nhan``), a business name, one business line
   out of eight, a capital (``von_kinh_doanh``) of 50 million to 1 billion dong on a
   log scale, 1 to 12 workers (``so_lao_dong``, about a third above 5), the owner's name,
   birth date, sex, ethnicity and identity number, addresses in the row's own province and
   commune, an e-mail for some, and for households one contributing member and the
   meeting minutes' file metadata. ``created_at`` is spread over the last 365 days and
   ``search_text`` holds the words of the fields that are not personal data, as the service
   computes them. ``VACUUM (ANALYZE)`` follows. A sample of the rows is then checked against
   the published version with the service's own validator and ``search_text`` function;
4. saves the reports through the API and measures, ``--rounds`` times, interleaved, in an
   order rotated each round, after one unmeasured warm-up run of each, four reports of
   count, ``sum(von_kinh_doanh)`` and ``avg(so_lao_dong)``:

   * (a) province ``01`` grouped by ``loai_chu_the``, rolled up to its communes;
   * (b) the same at the root (the whole country), rolled up to its children, the provinces;
   * (c) the same at one commune of ``01``;
   * (d) province ``01``, only businesses with more than 5 workers, grouped by ``$month``;

   each four ways:

   * ``API``: ``POST /api/v1/tenants/{t}/reports/{key}/run`` with a ``tenant_admin`` token
     of ``01`` for (a), (c) and (d) and the platform admin's for (b), timed by the client
     from the request to the whole response;
   * ``Nentang SQL``: the very statement and parameters the service sends for that run
     (captured from the app in-process with a SQLAlchemy event), executed with asyncpg as
     the service role with ``nentang.scope`` set to the caller's scope, so row security
     applies as in the service, timed to the last row;
   * ``Nentang SQL, no RLS``: the same statement and parameters as the superuser, which
     row security does not apply to (the application's own tenant criteria are still in the
     statement), to tell the policies' cost from the statement's;
   * ``SQL baseline``: the equivalent hand-written ``GROUP BY`` (a join of submissions to
     their tenant and to the unit they roll up to, ``data->>'field'`` cast to numeric),
     executed with asyncpg as the superuser: no row security, no API;

   All four must give the same rows (checked on the warm-up). Besides wall time it records
   the CPU the server process and PostgreSQL used (from ``/proc``; PostgreSQL's includes
   parallel workers, through the postmaster's reaped-children time, and anything else the
   server was doing).

   Every figure here is of a *custom* plan, made with the parameters' values. The service
   keeps its statements prepared on each pooled connection, and from a connection's sixth run
   of a statement PostgreSQL may switch to the *generic* plan (see step 5). So each round
   starts a new server, warmed up by one unmeasured run of (c), and its connection runs the
   by-unit statement at most four times in a round; the direct runs use no statement cache;
5. measures the generic plans (:func:`generic_plans`): for each case, the estimated cost of
   the custom and the generic plan and one run under the generic plan (``PREPARE`` and
   ``EXECUTE`` with ``plan_cache_mode = force_generic_plan``, as the service role under the
   caller's scope), cancelled after ``--generic-timeout`` seconds. If (a) finishes quickly
   enough under it, a new server then runs (b) once and (a) nine times through the API, to
   show whether the service itself switches;
6. records ``EXPLAIN (ANALYZE, BUFFERS)`` of the service's statements for (a) and (b), as
   the service role under the caller's scope and as the superuser, and of the baselines,
   with a summary of each (scan nodes, time, buffers, JIT), and the SQL each report run
   sends (:mod:`benchmarks.sqltrace`);
7. prints Markdown tables (medians, with the range over rounds, and the ratios to the
   baseline) and the plan summaries, writes the raw figures to ``benchmarks/out/``, and drops
   the database and roles whatever happened.

PostgreSQL's configuration is left as it is (it is printed with the results), so the figures
are those of a stock server: with the default 128 MB of shared buffers, a million rows do
not fit and a scan of all of them reads from the operating system's page cache.

``NENTANG_BENCH_PG_URL`` names a superuser connection (default: the test suite's,
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

# SQL is built from this module's constants and the statements captured from the service;
# values are bind parameters, except in EXECUTE of a prepared statement (sql_literal quotes).
# ruff: noqa: S608
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.forms.submissions import search_text, words
from app.forms.validators import compiled
from benchmarks import sqltrace
from benchmarks.run import (
    MANIFEST,
    OUT_DIR,
    REPO,
    ROOT_CODE,
    ROOT_NAME,
    Api,
    Database,
    Server,
    abbreviate,
    dsn,
    machine,
    nentang_cli,
    process_cpu,
    revision,
)

FORM_KEY = "ho-kinh-doanh"
FORM_FILE = REPO / "forms" / FORM_KEY / "form.json"
PROVINCE = "01"
BY_UNIT, FILTERED = "hkd-theo-don-vi", "hkd-tren-5-lao-dong"
AGGREGATES = [{"fn": "count"}, {"fn": "sum", "field": "von_kinh_doanh"},
              {"fn": "avg", "field": "so_lao_dong"}]
API, OWN, OWN_NO_RLS, BASELINE = "API", "Nentang SQL", "Nentang SQL, no RLS", "SQL baseline"
METHODS = (API, OWN, OWN_NO_RLS, BASELINE)
HTTP_TIMEOUT = 600.0
# The service's runs of (a) after one of (b), on a new server: enough for a connection's plan
# cache to switch to the generic plan, if it does. Only when (a) takes less than this under
# the generic plan.
REPEATS, REPEAT_LIMIT_MS = 9, 20_000
# Each province's own office gets this many draws against a commune's 1 to 5, about 5 % of
# the rows in all.
PROVINCE_WEIGHT = 15
SAMPLE = 200  # rows checked against the published form after the load
PG_SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost",
               "max_parallel_workers_per_gather", "jit")

# --- the data ---------------------------------------------------------------------------------

# (VSIC code, business line, the word a shop's name starts with)
LINES = (
    ("5610", "Nhà hàng và các dịch vụ ăn uống phục vụ lưu động", "QUÁN PHỞ"),
    ("5630", "Dịch vụ phục vụ đồ uống", "CÀ PHÊ"),
    ("4711", "Bán lẻ lương thực, thực phẩm, đồ uống, thuốc lá, thuốc lào chiếm tỷ trọng "
     "lớn trong các cửa hàng kinh doanh tổng hợp", "TẠP HÓA"),
    ("4722", "Bán lẻ thực phẩm trong các cửa hàng chuyên doanh", "THỰC PHẨM"),
    ("1071", "Sản xuất các loại bánh từ bột", "BÁNH"),
    ("9631", "Cắt tóc, làm đầu, gội đầu", "SALON TÓC"),
    ("4520", "Bảo dưỡng, sửa chữa ô tô và xe có động cơ khác", "SỬA XE"),
    ("4771", "Bán lẻ hàng may mặc, giày dép, hàng da và giả da trong các cửa hàng chuyên "
     "doanh", "THỜI TRANG"),
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
          "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu", "Quang", "Thanh", "Hữu", "Xuân")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Lan", "Linh",
         "Long", "Mai", "Nam", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Yến")
STREETS = ("Trần Hưng Đạo", "Lê Lợi", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt",
           "Quang Trung", "Hùng Vương", "Phan Chu Trinh", "Nguyễn Trãi", "Lê Duẩn")
ETHNIC = ("Tày", "Thái", "Mường", "Khmer", "Hoa", "Nùng", "Mông", "Dao")

UNITS_SQL = f"""
CREATE TEMP TABLE bench_units AS
WITH units AS (
    SELECT t.id, t.code, t.kind,
           CASE WHEN t.kind = 'province' THEN t.code ELSE p.code END AS tinh,
           CASE WHEN t.kind = 'commune' THEN t.code ELSE '00000' END AS xa,
           CASE WHEN t.kind = 'province' THEN {PROVINCE_WEIGHT}
                ELSE 1 + floor(random() * 5)::int END AS weight
    FROM (SELECT * FROM tenants WHERE kind IN ('province', 'commune') ORDER BY code) t
    LEFT JOIN tenants p ON p.id = t.parent_id
)
SELECT (row_number() OVER (ORDER BY u.code, g.n))::int AS slot, u.id AS tenant_id, u.tinh, u.xa
FROM units u CROSS JOIN LATERAL generate_series(1, u.weight) AS g(n)
"""



def _pick(n: int) -> str:
    """SQL for a random element of the text array parameter ``$n``."""
    return f"(${n}::text[])[1 + floor(random() * cardinality(${n}::text[]))::int]"


# $1 form key, $2 form tenant, $3 form id, $4 version, $5 to $16 the vocabularies (text[]),
# $17 how many rows, $18 how many slots in bench_units.
INSERT_SQL = f"""
INSERT INTO submissions (tenant_id, id, form_key, form_tenant_id, form_id, form_version,
                         status, data, search_text, created_by, updated_at, submitted_at,
                         created_at)
SELECT u.tenant_id, gen_random_uuid(), $1, $2, $3, $4, 'submitted',
    jsonb_build_object(
        'loai_chu_the', r.kind,
        'ten_ho_kinh_doanh', 'HỘ KINH DOANH ' || ($7::text[])[r.line] || ' '
                             || ($14::text[])[r.given],
        'dia_chi_tru_so', jsonb_build_object('tinh', u.tinh, 'xa', u.xa, 'chi_tiet', r.street),
        'dien_thoai', '09' || lpad(floor(random() * 100000000)::bigint::text, 8, '0'),
        'nganh_nghe', jsonb_build_array(jsonb_build_object(
            'ma_nganh', ($5::text[])[r.line], 'ten_nganh', ($6::text[])[r.line],
            'la_nganh_chinh', true)),
        'von_kinh_doanh', r.capital,
        'so_lao_dong', r.workers,
        'ngay_bat_dau_hoat_dong', r.started,
        'chu_ho_ho_ten', {_pick(10)} || ' ' || {_pick(11)} || ' ' || ($12::text[])[r.given],
        'chu_ho_ngay_sinh', to_char(date '1955-01-01' + floor(random() * 18000)::int,
                                    'YYYY-MM-DD'),
        'chu_ho_gioi_tinh', r.sex,
        'chu_ho_dan_toc', CASE WHEN random() < 0.85 THEN 'Kinh'
            ELSE {_pick(16)} END,
        'chu_ho_so_dinh_danh', '0' || u.tinh || CASE r.sex WHEN 'nam' THEN '0' ELSE '1' END
            || lpad(floor(random() * 100000000)::bigint::text, 8, '0'),
        'chu_ho_noi_thuong_tru', jsonb_build_object('tinh', u.tinh, 'xa', u.xa,
                                                    'chi_tiet', r.street),
        'cam_ket', true)
    || CASE WHEN random() < 0.3 THEN jsonb_build_object('email', 'hkd' || r.i || '@gmail.com')
            ELSE '{{}}'::jsonb END
    || CASE WHEN r.kind = 'ho_gia_dinh' THEN jsonb_build_object(
        'thanh_vien_ho_gia_dinh', jsonb_build_array(jsonb_build_object(
            'ho_ten', {_pick(10)} || ' Văn ' || {_pick(12)},
            'ngay_sinh', to_char(date '1960-01-01' + floor(random() * 16000)::int, 'YYYY-MM-DD'),
            'gioi_tinh', 'nam',
            'so_dinh_danh', '0' || u.tinh || '0'
                            || lpad(floor(random() * 100000000)::bigint::text, 8, '0'),
            'gia_tri_von_gop', r.capital / 4,
            'ty_le_von_gop', 25)),
        'bien_ban_hop_thanh_vien', jsonb_build_object(
            'ten_tep', 'bien-ban-hop-ho-gia-dinh.pdf',
            'sha256', md5(r.i::text) || md5((-r.i)::text),
            'kich_thuoc', 100000 + floor(random() * 900000)::int,
            'loai_noi_dung', 'application/pdf'))
       ELSE '{{}}'::jsonb END,
    concat_ws(' ', CASE r.kind WHEN 'ca_nhan' THEN 'ca nhan' ELSE 'ho gia dinh' END,
              'ho kinh doanh', ($9::text[])[r.line], ($15::text[])[r.given],
              ($8::text[])[r.line], r.capital::text, r.workers::text,
              replace(r.started, '-', ' ')),
    'benchmark-loader', r.at, r.at, r.at
FROM (
    SELECT i, 1 + floor(random() * $18::int)::int AS slot,
           CASE WHEN random() < 0.7 THEN 'ca_nhan' ELSE 'ho_gia_dinh' END AS kind,
           1 + floor(random() * cardinality($5::text[]))::int AS line,
           1 + floor(random() * cardinality($12::text[]))::int AS given,
           CASE WHEN random() < 0.6 THEN 'nam' ELSE 'nu' END AS sex,
           (round(exp(17.73 + 3.0 * random()) / 1000000) * 1000000)::bigint AS capital,
           1 + floor(12 * random() ^ 2)::int AS workers,
           'Số ' || (1 + floor(random() * 300)::int) || ' đường '
               || {_pick(13)} AS street,
           at, to_char(at - random() * interval '3650 days', 'YYYY-MM-DD') AS started
    FROM (SELECT i, now() - random() * interval '365 days' AS at
          FROM generate_series(1, $17::int) AS g(i)) AS days
) AS r
JOIN bench_units u ON u.slot = r.slot
"""


def vocabularies() -> list[list[str]]:
    """The loader's parameters $5 to $16: the display texts and, for ``search_text``, their
    words as :func:`app.forms.submissions.words` normalises them."""
    def spoken(texts: Sequence[str]) -> list[str]:
        return [" ".join(words(t)) for t in texts]

    given_upper = [g.upper() for g in GIVEN]
    return [[c for c, _, _ in LINES], [n for _, n, _ in LINES], [s for _, _, s in LINES],
            spoken([f"{c} {n}" for c, n, _ in LINES]), spoken([s for _, _, s in LINES]),
            list(FAMILY), list(MIDDLE), list(GIVEN), list(STREETS), given_upper,
            spoken(given_upper), list(ETHNIC)]


def load_submissions(db: Database, count: int, seed: float, form: Any) -> dict[str, Any]:
    """Insert ``count`` submissions of the published version ``form`` as the superuser, then
    ``VACUUM (ANALYZE)``; return what it took and what was made."""

    async def go() -> dict[str, Any]:
        conn = await asyncpg.connect(dsn(db.superuser_url))
        try:
            await conn.execute("SELECT setseed($1::float8)", seed)
            await conn.execute(UNITS_SQL)
            slots = int(await conn.fetchval("SELECT count(*) FROM bench_units"))
            started = time.perf_counter()
            status = await conn.execute(INSERT_SQL, FORM_KEY, form["tenant_id"], form["id"],
                                        1, *vocabularies(), count, slots)
            inserted = time.perf_counter() - started
            started = time.perf_counter()
            await conn.execute("VACUUM (ANALYZE) submissions")
            vacuumed = time.perf_counter() - started
            sizes = await conn.fetchrow(
                "SELECT pg_relation_size('submissions') AS heap, "
                "pg_indexes_size('submissions') AS indexes, "
                "pg_total_relation_size('submissions') AS total")
            per_unit = await conn.fetch(
                "SELECT t.kind, count(*) AS n FROM submissions s JOIN tenants t "
                "ON t.id = s.tenant_id GROUP BY t.kind, t.id")
        finally:
            await conn.close()
        communes = sorted(r["n"] for r in per_unit if r["kind"] == "commune")
        provinces = sorted(r["n"] for r in per_unit if r["kind"] == "province")
        return {"count": count, "insert_seconds": round(inserted, 1),
                "vacuum_analyze_seconds": round(vacuumed, 1), "rows_inserted": status,
                "slots": slots, "heap_mib": round(sizes["heap"] / 2**20),
                "indexes_mib": round(sizes["indexes"] / 2**20),
                "total_mib": round(sizes["total"] / 2**20),
                "communes_with_rows": len(communes),
                "per_commune": spread(communes), "per_province_office": spread(provinces)}

    return asyncio.run(go())


def spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": values[0], "median": statistics.median(values), "max": values[-1]}


def check_sample(db: Database, definition: dict[str, Any]) -> dict[str, Any]:
    """Validate a random sample of the loaded rows with the service's own validator, and
    compare their ``search_text`` words with what the service would store."""
    rows = db.fetch("SELECT data, search_text FROM submissions TABLESAMPLE SYSTEM (1) "
                    "LIMIT $1", SAMPLE)
    form = compiled(definition)
    invalid, other_words = [], 0
    for row in rows:
        data = json.loads(row["data"])
        if not form.is_valid(data):
            invalid.append([e.pointer for e in form.errors(data)])
        if set(row["search_text"].split()) != set(search_text(definition, data).split()):
            other_words += 1
    if invalid:
        raise RuntimeError(f"{len(invalid)} of {len(rows)} sampled rows are invalid: "
                           f"{invalid[:3]}")
    return {"sampled": len(rows), "valid": len(rows) - len(invalid),
            "search_text_differs": other_words}


# --- the reports ------------------------------------------------------------------------------

def by_unit() -> dict[str, Any]:
    return {"key": BY_UNIT, "form": FORM_KEY, "group_by": ["loai_chu_the"],
            "title": {"vi": "Hộ kinh doanh theo đơn vị", "en": "Household businesses by unit"},
            "rollup": "children", "aggregates": AGGREGATES, "limit": 10000}


def filtered() -> dict[str, Any]:
    return {"key": FILTERED, "form": FORM_KEY, "group_by": ["$month"],
            "title": {"vi": "Hộ kinh doanh trên 5 lao động theo tháng",
                      "en": "Household businesses with more than 5 workers, by month"},
            "filters": [{"field": "so_lao_dong", "op": "gt", "value": 5}],
            "aggregates": AGGREGATES}


_NUMBERS = ("count(*) AS n, sum((s.data ->> 'von_kinh_doanh')::numeric) AS von, "
            "avg((s.data ->> 'so_lao_dong')::numeric) AS lao_dong")
# $1, $2: the running tenant's subtree as a path range; $3: the length of a child's path.
BASELINE_ROLLUP = f"""
SELECT u.code, s.data ->> 'loai_chu_the' AS loai_chu_the, {_NUMBERS}
FROM submissions s
JOIN tenants t ON t.id = s.tenant_id
JOIN tenants u ON u.path = left(t.path, $3)
WHERE t.path >= $1 AND t.path < $2
  AND s.form_key = 'ho-kinh-doanh' AND s.status = 'submitted'
GROUP BY 1, 2 ORDER BY 1, 2
"""
BASELINE_MONTHS = f"""
SELECT to_char(s.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month, {_NUMBERS}
FROM submissions s
JOIN tenants t ON t.id = s.tenant_id
WHERE t.path >= $1 AND t.path < $2
  AND s.form_key = 'ho-kinh-doanh' AND s.status = 'submitted'
  AND (s.data ->> 'so_lao_dong')::numeric > 5
GROUP BY 1 ORDER BY 1
"""


@dataclass
class Case:
    name: str
    title: str
    tenant: str
    key: str
    who: str  # "province" (tenant_admin of 01) or "platform"
    baseline: str
    explain: bool = False
    path: str = ""  # filled in once the tree exists

    def baseline_args(self) -> list[Any]:
        # A tenant path is "/<uuid>/.../": "0" follows "/" in byte order, so the range ends
        # just after every path under this one.
        return [self.path, self.path[:-1] + "0", len(self.path) + 37][
            :3 if self.baseline is BASELINE_ROLLUP else 2]


def cases(commune: str) -> list[Case]:
    return [
        Case("a", f"province {PROVINCE}, by commune x loai_chu_the", PROVINCE, BY_UNIT,
             "province", BASELINE_ROLLUP, explain=True),
        Case("b", "root (whole country), by province x loai_chu_the", ROOT_CODE, BY_UNIT,
             "platform", BASELINE_ROLLUP, explain=True),
        Case("c", f"commune {commune}, by loai_chu_the", commune, BY_UNIT, "province",
             BASELINE_ROLLUP),
        Case("d", f"province {PROVINCE}, so_lao_dong > 5, by $month", PROVINCE, FILTERED,
             "province", BASELINE_MONTHS),
    ]


def run_path(case: Case) -> str:
    return f"/api/v1/tenants/{case.tenant}/reports/{case.key}/run"


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def same_rows(left: list[list[Any]], right: list[list[Any]]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


@dataclass
class Captured:
    """The statement one report run sends, with its parameters and the caller's scope."""

    scope: str
    statement: str
    parameters: list[Any]


async def capture(settings: Any, all_cases: list[Case],
                  headers: dict[str, dict[str, str]]) -> tuple[dict[str, Captured],
                                                               dict[str, Any]]:
    """Run every report in-process (:func:`benchmarks.sqltrace.trace`) and keep, besides the
    trace, the parameters of the aggregate statement and of the scope's ``set_config``."""
    seen: dict[str, list[tuple[str, Any]]] = {}
    current: list[str] = [""]

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.setdefault(current[0], []).append((statement, parameters))

    def request(case: Case) -> Callable[[httpx.AsyncClient], Awaitable[int]]:
        async def go(http: httpx.AsyncClient) -> int:
            current[0] = case.name
            seen[case.name] = []
            return await sqltrace.status(http.post(run_path(case), headers=headers[case.who]))
        return go

    event.listen(Engine, "before_cursor_execute", record)
    try:
        trace = await sqltrace.trace(settings, {f"({c.name}) POST {run_path(c)}": request(c)
                                                for c in all_cases})
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    found = {}
    for case in all_cases:
        # The request authenticates under the platform scope, then sets the caller's: the
        # scope of the report is the last one set before it.
        scope = ""
        for statement, parameters in seen[case.name]:
            if "nentang.scope" in statement:
                scope = next(iter(parameters))
            elif "GROUP BY" in statement and "submissions" in statement:
                found[case.name] = Captured(scope, statement, list(parameters))
                break
    return found, trace


# --- measuring --------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def postgres_cpu_total() -> float:
    """CPU seconds of every visible ``postgres`` process, with the time of the children it
    has reaped: a parallel worker or a backend that ended between two samples still counts
    (through the postmaster's cutime/cstime)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(f) for f in fields[11:15])
        except OSError:
            continue
    return total / _TICK


@dataclass
class Outcome:
    rows: list[list[Any]]
    detail: dict[str, Any]


class Bench:
    """Everything a measurement needs: the server, HTTP clients, tokens and connections."""

    def __init__(self, db: Database, server: Server, start: Callable[[], Server],
                 credentials: dict[str, tuple[str, str]], captured: dict[str, Captured]) -> None:
        self.db, self.server, self.start = db, server, start
        self.credentials, self.captured = credentials, captured
        self.headers: dict[str, dict[str, str]] = {}

    async def __aenter__(self) -> Bench:
        await asyncio.to_thread(self.server.wait_ready)
        self.http = httpx.AsyncClient(base_url=self.server.base_url, timeout=HTTP_TIMEOUT)
        # No statement cache: every execution is planned with its parameters (a custom
        # plan), as the service's are on a connection's first five runs of a statement.
        self.superuser = await asyncpg.connect(dsn(self.db.superuser_url),
                                               statement_cache_size=0)
        self.app = await asyncpg.connect(dsn(self.db.app_url), statement_cache_size=0)
        return self

    async def restart(self) -> None:
        """A new server process, so that its connections have run no report yet (see
        :func:`generic_plans` for what happens after five runs), and fresh tokens."""
        self.server.stop()
        self.server = self.start()
        await asyncio.to_thread(self.server.wait_ready)
        await self.http.aclose()
        self.http = httpx.AsyncClient(base_url=self.server.base_url, timeout=HTTP_TIMEOUT)
        await self.refresh_tokens()

    async def __aexit__(self, *_: Any) -> None:
        await self.http.aclose()
        await self.superuser.close()
        await self.app.close()

    async def refresh_tokens(self) -> None:
        """New tokens every round (they live ten minutes), outside any timing."""
        for who, (client_id, secret) in self.credentials.items():
            response = await self.http.post("/oauth/token",
                                            data={"grant_type": "client_credentials"},
                                            auth=(client_id, secret))
            response.raise_for_status()
            self.headers[who] = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def api(self, case: Case) -> Outcome:
        response = await self.http.post(run_path(case), headers=self.headers[case.who])
        if response.status_code != 200:
            raise RuntimeError(f"{run_path(case)}: {response.status_code} {response.text}")
        body = response.json()
        return Outcome(body["rows"], {"truncated": body["truncated"]})

    async def scoped(self, case: Case) -> None:
        await self.app.execute("SELECT set_config('nentang.scope', $1, false)",
                               self.captured[case.name].scope)

    async def nentang_sql(self, case: Case) -> Outcome:
        found = self.captured[case.name]
        rows = await self.app.fetch(found.statement, *found.parameters)
        return Outcome([[plain(v) for v in r] for r in rows], {})

    async def nentang_sql_no_rls(self, case: Case) -> Outcome:
        found = self.captured[case.name]
        rows = await self.superuser.fetch(found.statement, *found.parameters)
        return Outcome([[plain(v) for v in r] for r in rows], {})

    async def baseline(self, case: Case) -> Outcome:
        rows = await self.superuser.fetch(case.baseline, *case.baseline_args())
        return Outcome([[plain(v) for v in r] for r in rows], {})

    async def once(self, case: Case, method: str) -> dict[str, Any]:
        """One timed run, with the CPU the server process and PostgreSQL used meanwhile."""
        if method == OWN:
            await self.scoped(case)
        run = {API: self.api, OWN: self.nentang_sql, OWN_NO_RLS: self.nentang_sql_no_rls,
               BASELINE: self.baseline}[method]
        server_before, pg_before = process_cpu(self.server.proc.pid), postgres_cpu_total()
        started = time.perf_counter()
        outcome = await run(case)
        elapsed = time.perf_counter() - started
        server_after, pg_after = process_cpu(self.server.proc.pid), postgres_cpu_total()
        row: dict[str, Any] = {"case": case.name, "method": method, "ms": elapsed * 1000,
                               "result_rows": len(outcome.rows),
                               "pg_cpu_ms": (pg_after - pg_before) * 1000, **outcome.detail}
        if method == API and server_before is not None and server_after is not None:
            row["server_cpu_ms"] = (server_after - server_before) * 1000
        return {**row, "_rows": outcome.rows}


async def measure(bench: Bench, all_cases: list[Case], rounds: int) -> dict[str, Any]:
    """A warm-up run of each case and method (whose results must agree), then ``rounds``
    interleaved rounds, the order rotated each round."""
    items = [(c, m) for c in all_cases for m in METHODS]
    await bench.refresh_tokens()
    agreement, results = {}, {}
    for case in all_cases:
        found = {}
        for method in METHODS:
            warm = await bench.once(case, method)
            found[method] = warm.pop("_rows")
        agreement[case.name] = {m: same_rows(found[API], found[m]) for m in METHODS[1:]}
        if not all(agreement[case.name].values()):
            raise RuntimeError(f"({case.name}) results differ: " + json.dumps(
                {m: rows[:5] for m, rows in found.items()}, default=str, ensure_ascii=False))
        results[case.name] = found[API]
        print(f"  warm-up ({case.name}): {len(found[API])} rows, all methods agree",
              file=sys.stderr, flush=True)
    measured = []
    warm_up = next(c for c in all_cases if c.name == "c")
    for index in range(rounds):
        # A new server each round, warmed up by one unmeasured small report: its pooled
        # connection then runs the report statement at most four times in the round.
        await bench.restart()
        await bench.once(warm_up, API)
        shift = (index * 5) % len(items)  # so each case's methods change places too
        order = items[shift:] + items[:shift]
        print(f"round {index + 1}/{rounds}", file=sys.stderr, flush=True)
        for case, method in order:
            row = await bench.once(case, method)
            row.pop("_rows")
            measured.append({"round": index + 1, **row})
            print(f"  ({case.name}) {method}: {row['ms']:.0f} ms", file=sys.stderr, flush=True)
    return {"rows": measured, "agreement": agreement, "results": results}


# --- generic plans ----------------------------------------------------------------------------

def sql_literal(value: Any) -> str:
    """A captured parameter as a SQL literal, for ``EXECUTE`` of a prepared statement."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(sql_literal(v) for v in value) + "]::text[]"
    raise TypeError(f"unexpected parameter {value!r}")


def _top_cost(plan: list[str]) -> float | None:
    found = re.search(r"cost=[\d.]+\.\.([\d.]+)", plan[0]) if plan else None
    return float(found.group(1)) if found else None


async def generic_plans(db: Database, all_cases: list[Case], captured: dict[str, Captured],
                        timeout_s: float) -> dict[str, Any]:
    """Each case's statement under PostgreSQL's generic plan, as the service role under the
    caller's scope: the plan's shape and estimated cost (next to the custom plan's), and one
    run's time, cancelled after ``timeout_s``.

    The service (SQLAlchemy on asyncpg) keeps its statements prepared on each pooled
    connection. From the sixth run of a statement on a connection, PostgreSQL's plan cache
    (``plan_cache_mode = auto``) uses the generic plan, made without the parameters' values,
    whenever its estimated cost is below the average of the custom plans so far. A report's
    statement is the same text at every tenant, so the generic plan is chosen for all of them.
    """
    conn = await asyncpg.connect(dsn(db.app_url))
    found: dict[str, Any] = {}
    try:
        await conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
        for case in all_cases:
            own = captured[case.name]
            await conn.execute("SELECT set_config('nentang.scope', $1, false)", own.scope)
            name = f"report_{case.name}"
            await conn.execute(f"PREPARE {name} AS {own.statement}")
            execute = f"EXECUTE {name}(" + ", ".join(sql_literal(v) for v in own.parameters) + ")"
            await conn.execute("SET plan_cache_mode = force_custom_plan")
            custom = [r[0] for r in await conn.fetch(f"EXPLAIN {execute}")]
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            generic = [r[0] for r in await conn.fetch(f"EXPLAIN {execute}")]
            started = time.perf_counter()
            try:
                rows = await conn.fetch(execute)
                ms: float | None = (time.perf_counter() - started) * 1000
                result_rows: int | None = len(rows)
            except asyncpg.QueryCanceledError:
                ms, result_rows = None, None
            await conn.execute("RESET plan_cache_mode")
            await conn.execute(f"DEALLOCATE {name}")
            found[case.name] = {"ms": ms, "result_rows": result_rows,
                                "generic_cost": _top_cost(generic),
                                "custom_cost": _top_cost(custom), "generic_plan": generic,
                                "custom_plan": custom}
            print(f"  generic plan ({case.name}): "
                  + (f"{ms:.0f} ms" if ms is not None else f"cancelled after {timeout_s:g} s"),
                  file=sys.stderr, flush=True)
    finally:
        await conn.close()
    return {"timeout_s": timeout_s, "cases": found}


async def repeated_runs(bench: Bench, first: Case, then: Case, times: int) -> list[float]:
    """On a new server: ``first`` once, then ``then`` ``times`` times, through the API; the
    milliseconds of each, to see whether the plan changes after the fifth run."""
    await bench.restart()
    timings = []
    for case in [first] + [then] * times:
        timings.append((await bench.once(case, API))["ms"])
        print(f"  repeated ({case.name}) API: {timings[-1]:.0f} ms", file=sys.stderr, flush=True)
    return timings


# --- plans ------------------------------------------------------------------------------------

async def _explain(url: Any, statement: str, args: Sequence[Any],
                   setup: Sequence[tuple[str, Sequence[Any]]]) -> list[str]:
    conn = await asyncpg.connect(dsn(url))
    try:
        for query, query_args in setup:
            await conn.execute(query, *query_args)
        return [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *args)]
    finally:
        await conn.close()


def explain_plans(db: Database, all_cases: list[Case],
                  captured: dict[str, Captured]) -> dict[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS), for every case marked ``explain``, the service's statement
    as the service role under the caller's scope (row security on) and as the superuser (row
    security off, the application's own criteria still in the statement), and the
    baseline."""
    plans: dict[str, dict[str, Any]] = {}
    for case in all_cases:
        if not case.explain:
            continue
        found = captured[case.name]
        setup: list[tuple[str, Sequence[Any]]] = [
            ("SELECT set_config('nentang.scope', $1, false)", [found.scope])]
        runs: tuple[tuple[str, str, Any, str, Sequence[Any],
                          list[tuple[str, Sequence[Any]]]], ...] = (
                (f"({case.name}) {OWN}: service role, row security on", OWN, db.app_url,
                 found.statement, found.parameters, setup),
                (f"({case.name}) {OWN_NO_RLS}: superuser", OWN_NO_RLS, db.superuser_url,
                 found.statement, found.parameters, []),
                (f"({case.name}) {BASELINE}: superuser", BASELINE, db.superuser_url,
                 case.baseline, case.baseline_args(), []))
        for label, method, url, statement, args, before in runs:
            lines = asyncio.run(_explain(url, statement, args, before))
            plans[label] = {"case": case.name, "method": method, "statement": statement,
                            "parameters": args, "plan": lines, "summary": summarise(lines),
                            **({"scope": found.scope} if before else {})}
            print(f"  {label}: {plans[label]['summary'].get('execution_ms', 0):.0f} ms",
                  file=sys.stderr, flush=True)
    return plans


_SCAN = re.compile(r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan|"
                   r"Bitmap Index Scan)(?: using \S+)?(?: on \S+(?: \w+)?)?) .*?"
                   r"actual time=[\d.]+\.\.([\d.]+) rows=(\d+) loops=(\d+)")
_NODE = re.compile(r"->\s+([A-Z][A-Za-z ]+?)(?:\s+(?:on|using)\s|\s+\(|$)")


def summarise(lines: list[str]) -> dict[str, Any]:
    """Scan nodes (with rows and time), other node types, timings, buffers and JIT."""
    text = "\n".join(lines)
    scans = [{"node": m.group(1).strip(), "ms": float(m.group(2)),
              "rows": int(m.group(3)), "loops": int(m.group(4))}
             for m in _SCAN.finditer(text)]
    nodes = []
    for line in lines:
        found = _NODE.search(line) or re.match(r"^\s*([A-Z][A-Za-z ]+?)\s+\(", line)
        if found and found.group(1).strip() not in nodes:
            nodes.append(found.group(1).strip())
    summary: dict[str, Any] = {"scans": scans, "nodes": nodes}
    for key, pattern in (("execution_ms", r"Execution Time: ([\d.]+)"),
                         ("planning_ms", r"Planning Time: ([\d.]+)"),
                         ("jit_ms", r"Timing: .*Total ([\d.]+)"),
                         ("workers_launched", r"Workers Launched: (\d+)")):
        found = re.search(pattern, text)
        if found:
            summary[key] = float(found.group(1))
    buffers = re.search(r"Buffers: ([^\n]+)", text)  # the top node's, i.e. the total
    if buffers:
        summary["buffers"] = buffers.group(1).strip()
    return summary


# --- the run ----------------------------------------------------------------------------------

def publish_form(api: Api, token: str, definition: dict[str, Any]) -> None:
    forms = f"/api/v1/tenants/{ROOT_CODE}/forms"
    api.create(forms, token, definition)
    published = api.http.post(f"{forms}/{definition['key']}/versions/1/publish",
                              headers={"Authorization": f"Bearer {token}"})
    if published.status_code != 200:
        raise RuntimeError(f"publish: {published.status_code} {published.text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000,
                        help="submissions to load (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of every case")
    parser.add_argument("--generic-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="cancel a run under the generic plan after this long")
    parser.add_argument("--seed", type=float, default=0.42,
                        help="PostgreSQL setseed() for the loader, in [-1, 1]")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the report of an earlier run's raw results")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0

    manifest: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"]
    commune = next(e["code"] for e in manifest if e.get("parent") == PROVINCE)
    all_cases = cases(commune)
    definition: dict[str, Any] = json.loads(FORM_FILE.read_text(encoding="utf-8"))
    db = Database.fresh()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(), "machine": machine(), "revision": revision(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cases": {c.name: {"title": c.title, "tenant": c.tenant, "report": c.key}
                  for c in all_cases},
        "definitions": {BY_UNIT: by_unit(), FILTERED: filtered()}}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nentang-bench-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        report["machine"]["postgresql"] = db.fetch("SHOW server_version")[0][0]
        report["postgresql_settings"] = {
            name: db.fetch(f"SHOW {name}")[0][0] for name in PG_SETTINGS}
        env = db.env(data_dir)
        servers: list[Server] = []

        def start_server() -> Server:
            server = Server("nentang", ["-m", "app.cli", "serve", "--workers", "1"], env,
                            data_dir)
            servers.append(server)
            return server

        def stop_servers() -> None:
            for server in servers:
                server.stop()

        stack.callback(stop_servers)
        nentang = start_server()
        nentang.wait_ready()

        boot = json.loads(nentang_cli(env, "bootstrap", "--code", ROOT_CODE, "--name", ROOT_NAME))
        print(f"Applying {MANIFEST.relative_to(REPO)} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        nentang_cli(env, "apply", str(MANIFEST.relative_to(REPO)))
        report["apply_seconds"] = round(time.perf_counter() - started, 1)
        db.execute("VACUUM (ANALYZE) tenants", "VACUUM (ANALYZE) audit_records")
        report["tenants"] = int(db.fetch("SELECT count(*) FROM tenants")[0][0])
        print(f"  {report['tenants']} tenants in {report['apply_seconds']} s", file=sys.stderr,
              flush=True)

        api = Api(nentang.base_url)
        stack.callback(api.http.close)
        platform_token = api.token(boot["client_id"], boot["client_secret"])
        publish_form(api, platform_token, definition)
        client = api.create(f"/api/v1/tenants/{PROVINCE}/clients", platform_token,
                            {"name": "benchmark province admin", "roles": ["tenant_admin"]})
        credentials = {"platform": (boot["client_id"], boot["client_secret"]),
                       "province": (client["client_id"], client["client_secret"])}
        province_token = api.token(client["client_id"], client["client_secret"])
        tokens = {"platform": platform_token, "province": province_token}
        for case in all_cases:
            body = by_unit() if case.key == BY_UNIT else filtered()
            response = api.http.get(f"/api/v1/tenants/{case.tenant}/reports/{case.key}",
                                    headers={"Authorization": f"Bearer {tokens[case.who]}"})
            if response.status_code == 404:
                api.create(f"/api/v1/tenants/{case.tenant}/reports", tokens[case.who], body)
        form = db.fetch("SELECT tenant_id, id FROM forms WHERE key = $1", FORM_KEY)[0]
        paths = {r["code"]: r["path"] for r in db.fetch(
            "SELECT code, path FROM tenants WHERE code = ANY($1::text[])",
            [c.tenant for c in all_cases])}
        for case in all_cases:
            case.path = paths[case.tenant]

        print(f"Loading {args.count:,} submissions ...", file=sys.stderr, flush=True)
        report["load"] = load_submissions(db, args.count, args.seed, form)
        print(f"  inserted in {report['load']['insert_seconds']} s, VACUUM (ANALYZE) in "
              f"{report['load']['vacuum_analyze_seconds']} s", file=sys.stderr, flush=True)
        report["load"]["sample"] = check_sample(db, definition)
        report["subtree_rows"] = {c.name: int(db.fetch(
            "SELECT count(*) FROM submissions s JOIN tenants t ON t.id = s.tenant_id "
            "WHERE t.path >= $1 AND t.path < $2", *c.baseline_args()[:2])[0][0])
            for c in all_cases}

        headers = {who: {"Authorization": f"Bearer {api.token(*pair)}"}
                   for who, pair in credentials.items()}
        print("Capturing the statements ...", file=sys.stderr, flush=True)
        captured, report["sql_per_run"] = asyncio.run(capture(settings, all_cases, headers))
        report["captured"] = {name: vars(c) for name, c in captured.items()}

        async def measured() -> dict[str, Any]:
            async with Bench(db, nentang, start_server, credentials, captured) as bench:
                found = await measure(bench, all_cases, args.rounds)
                print("Generic plans ...", file=sys.stderr, flush=True)
                found["generic"] = await generic_plans(db, all_cases, captured,
                                                       args.generic_timeout)
                province = found["generic"]["cases"]["a"]["ms"]
                if province is not None and province < REPEAT_LIMIT_MS:
                    by_name = {c.name: c for c in all_cases}
                    found["repeated"] = {
                        "first": "b", "then": "a",
                        "ms": await repeated_runs(bench, by_name["b"], by_name["a"], REPEATS)}
                return found

        report.update(asyncio.run(measured()))
        print("Explaining ...", file=sys.stderr, flush=True)
        report["explain"] = explain_plans(db, all_cases, captured)
    report["total_seconds"] = round(time.perf_counter() - began)

    report["medians"] = summary(report["rows"])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"reports-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print_report(report, out)
    return 0


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per case and method: median, min and max of the wall time, median CPU."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["case"], row["method"]), []).append(row)
    found: dict[str, dict[str, dict[str, float]]] = {}
    for (case, method), runs in grouped.items():
        ms = [r["ms"] for r in runs]
        entry = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
                 "pg_cpu_ms": statistics.median(r["pg_cpu_ms"] for r in runs)}
        if all("server_cpu_ms" in r for r in runs):
            entry["server_cpu_ms"] = statistics.median(r["server_cpu_ms"] for r in runs)
        found.setdefault(case, {})[method] = entry
    return found


def print_report(report: dict[str, Any], out: Path) -> None:
    m, c, load = report["machine"], report["config"], report["load"]
    rev = report["revision"]
    print(f"\n## Report run time over {load['count']:,} submissions "
          f"({c['rounds']} rounds, medians)\n")
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, PostgreSQL "
          f"{m['postgresql']} ("
          + ", ".join(f"{k} {v}" for k, v in report["postgresql_settings"].items())
          + f"), Python {m['python']}. {report['tenants']:,} tenants (apply "
          f"{report['apply_seconds']} s).\n")
    per_commune, per_province = load["per_commune"], load["per_province_office"]
    print(f"Load: {load['count']:,} rows inserted in {load['insert_seconds']} s "
          f"({load['count'] / max(load['insert_seconds'], 0.001):,.0f} rows/s), "
          f"`VACUUM (ANALYZE)` {load['vacuum_analyze_seconds']} s; table {load['heap_mib']:,} MiB "
          f"+ indexes {load['indexes_mib']:,} MiB. Rows per commune {per_commune['min']}–"
          f"{per_commune['max']} (median {per_commune['median']:g}) over "
          f"{load['communes_with_rows']:,} communes; per province office "
          f"{per_province.get('min', 0)}–{per_province.get('max', 0)}. Sample of "
          f"{load['sample']['sampled']} rows: {load['sample']['valid']} valid against the "
          f"published form, search_text words differ in "
          f"{load['sample']['search_text_differs']}.\n")
    nan = float("nan")

    def cell(entry: dict[str, float]) -> str:
        return f"{entry['median_ms']:,.0f} ({entry['min_ms']:,.0f}–{entry['max_ms']:,.0f})"

    print("Wall time in ms, median (min–max) over the rounds:\n")
    print(f"| case | submissions counted | result rows | {API} | {OWN} (service role, RLS) "
          f"| {OWN_NO_RLS} (superuser) | {BASELINE} (superuser) | API / baseline "
          f"| {OWN} / baseline | {OWN_NO_RLS} / baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, case in report["cases"].items():
        med = report["medians"][name]
        base = med[BASELINE]["median_ms"]
        print(f"| ({name}) {case['title']} | {report['subtree_rows'][name]:,} "
              f"| {len(report['results'][name])} | "
              + " | ".join(cell(med[k]) for k in METHODS) + " | "
              + " | ".join(f"{med[k]['median_ms'] / base:,.1f}" for k in (API, OWN, OWN_NO_RLS))
              + " |")
    print("\nWhere the time goes (medians, ms): the API's overhead over its own statement, and "
          "the CPU used by the server process and by PostgreSQL (all its processes) per run:\n")
    print(f"| case | API − {OWN} | server CPU (API) | PG CPU: "
          + " / ".join(METHODS) + " |")
    print("|---|---:|---:|---:|")
    for name in report["cases"]:
        med = report["medians"][name]
        print(f"| ({name}) | {med[API]['median_ms'] - med[OWN]['median_ms']:,.0f} "
              f"| {med[API].get('server_cpu_ms', nan):,.0f} | "
              + " / ".join(f"{med[k]['pg_cpu_ms']:,.0f}" for k in METHODS) + " |")
    generic = report.get("generic")
    if generic:
        print("\n## Generic plans (from a connection's sixth run of the statement)\n")
        print("As the service role under the caller's scope. Estimated costs are the planner's; "
              f"a run under the generic plan is cancelled after {generic['timeout_s']:g} s.\n")
        print(f"| case | custom plan: estimated cost | generic plan: estimated cost "
              f"| {OWN} (custom plan), median ms | generic plan, one run ms |")
        print("|---|---:|---:|---:|---:|")
        for name, found in generic["cases"].items():
            ran = (f"{found['ms']:,.0f}" if found["ms"] is not None
                   else f"> {generic['timeout_s'] * 1000:,.0f} (cancelled)")
            print(f"| ({name}) | {found['custom_cost']:,.0f} | {found['generic_cost']:,.0f} "
                  f"| {report['medians'][name][OWN]['median_ms']:,.0f} | {ran} |")
        repeated = report.get("repeated")
        if repeated:
            print(f"\nThrough the API on a new server, ({repeated['first']}) once, then "
                  f"({repeated['then']}) {len(repeated['ms']) - 1} times, ms: "
                  + ", ".join(f"{ms:,.0f}" for ms in repeated["ms"]))
        else:
            print("\nThe repeated API runs were skipped: (a) under the generic plan took longer "
                  f"than {REPEAT_LIMIT_MS / 1000:g} s or did not finish.")
        for name in ("a", "d"):
            if name in generic["cases"]:
                print(f"\nGeneric plan of ({name}) (EXPLAIN, no ANALYZE):\n\n```\n"
                      + "\n".join(generic["cases"][name]["generic_plan"]) + "\n```")
    print("\n## Query plans (EXPLAIN ANALYZE, BUFFERS)\n")
    print("| statement | execution ms | planning ms | JIT ms | workers | buffers "
          "| scans |")
    print("|---|---:|---:|---:|---:|---|---|")
    for label, plan in report["explain"].items():
        s = plan["summary"]
        scans = "; ".join(f"{x['node']} ({x['rows'] * x['loops']:,} rows in {x['loops']:,} "
                          f"loops, {x['ms']:.1f} ms/loop)" for x in s["scans"])
        print(f"| {label} | {s.get('execution_ms', nan):.0f} | {s.get('planning_ms', nan):.1f} "
              f"| {s.get('jit_ms', 0):.0f} | {s.get('workers_launched', 0):.0f} "
              f"| {s.get('buffers', '')} | {scans} |")
    print("\n## SQL per report run (warm)\n")
    for label, trace in report["sql_per_run"].items():
        print(f"- {label} (HTTP {trace['status']}): {len(trace['statements'])} statements in "
              f"{trace['transactions']} transaction(s) = {trace['round_trips']} round trips")
        for statement in trace["statements"]:
            print(f"    - `{abbreviate(statement)}`")
    print()
    for label, plan in report["explain"].items():
        print(f"### {label}\n\n```\n{plan['statement'].strip()}\n-- parameters: "
              f"{json.dumps(plan['parameters'], ensure_ascii=False, default=str)}\n\n"
              + "\n".join(plan["plan"]) + "\n```\n")
    print(f"Raw results: {out.resolve().relative_to(REPO)}; whole run "
          f"{report.get('total_seconds', 0) / 60:.1f} min")


if __name__ == "__main__":
    raise SystemExit(main())
