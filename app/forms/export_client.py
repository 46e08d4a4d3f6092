"""``nentang export submissions``: download an export through the API, with a progress bar.

The command is an ordinary API client (OAuth 2.0 client credentials), so the export is
masked by the client's own permissions, exactly as any integrator's would be. Progress is
counted in submissions for CSV (the server announces the total in ``X-Total-Count``) and in
bytes for XLSX (whose length is known before it is sent). The file appears under its final
name only when complete.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from tqdm import tqdm

from app.core.api_client import ApiFailed, problem_text, signed_in


class ExportFailed(Exception):
    pass


@dataclass(frozen=True)
class ExportRequest:
    api: str
    client_id: str
    client_secret: str
    tenant: str
    form: str
    format: str
    output: Path
    params: tuple[tuple[str, str], ...] = ()


class _RecordCounter:
    """Counts CSV records in a byte stream: line ends outside quoted fields."""

    def __init__(self) -> None:
        self.quoted = False

    def count(self, chunk: bytes) -> int:
        records = 0
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if not self.quoted:
                records += part.count(b"\n")
            if index < len(parts) - 1:
                self.quoted = not self.quoted
        return records


def download(request: ExportRequest, *, progress: IO[str] | None = None,
             transport: httpx.BaseTransport | None = None) -> int:
    """Write the export to ``request.output``; returns the number of submissions."""
    params: tuple[tuple[str, str | int | float | bool | None], ...] = (
        ("form", request.form), ("format", request.format), *request.params)
    try:
        http = signed_in(request.api, request.client_id, request.client_secret,
                         timeout=httpx.Timeout(30, read=600), transport=transport)
    except ApiFailed as exc:
        raise ExportFailed(str(exc)) from None
    with http:
        url = f"/api/v1/tenants/{request.tenant}/submissions/export"
        with http.stream("GET", url, params=params) as response:
            if response.status_code != 200:
                response.read()
                raise ExportFailed(problem_text(response))
            total = int(response.headers.get("x-total-count", "0"))
            by_bytes = request.format == "xlsx"
            bar = tqdm(total=int(response.headers.get("content-length", 0)) if by_bytes
                       else total, unit="B" if by_bytes else " submissions",
                       unit_scale=by_bytes, file=progress, disable=progress is None,
                       desc=request.output.name)
            counter = _RecordCounter()
            directory = request.output.resolve().parent
            handle, partial = tempfile.mkstemp(dir=directory, prefix=".export-")
            try:
                with os.fdopen(handle, "wb") as out, bar:
                    lines = 0
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        lines += counter.count(chunk)
                        # Bytes for XLSX; for CSV, records written less the header line.
                        done = bar.n + len(chunk) if by_bytes else max(lines - 1, 0)
                        bar.update(done - bar.n)
                os.replace(partial, request.output)
            except BaseException:
                os.unlink(partial)
                raise
    return total
