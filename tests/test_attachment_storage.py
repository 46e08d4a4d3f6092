"""Attachment storage and content checks: each test runs on a local directory and on S3.

S3 is moto's server, started here as a separate process on a free loopback port and spoken to
over HTTP by boto3, with IAM authentication on so that bad credentials are really refused. If
the server cannot start, the S3 tests error: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from starlette.datastructures import Headers, UploadFile

from app.forms import content_types as ct
from app.forms.storage import (
    AttachmentStorage,
    InvalidKey,
    LocalDirectoryStorage,
    NotFound,
    S3Storage,
    StorageError,
    TooLarge,
    UnsupportedType,
    _finish,
    delete_all,
    new_key,
    storage_from_url,
    store_upload,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
BUCKET = "nentang-attachments"
S3_PREFIX = "tenant-a/attachments"
LIMIT = 512 * 1024


# --- the S3 server -------------------------------------------------------------------------

AMBIENT_AWS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="module", autouse=True)
def _no_ambient_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """boto3 sees only what a test gives it: not the machine's AWS profile or files, and never
    the instance metadata service, where its credential chain would otherwise end."""
    absent = tmp_path_factory.mktemp("aws") / "absent"
    with pytest.MonkeyPatch.context() as env:
        for name in AMBIENT_AWS:
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", str(absent))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(absent))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@dataclass
class Moto:
    endpoint: str
    access_key: str
    secret_key: str

    @cached_property
    def client(self) -> S3Client:
        return _s3_client(self.endpoint, self.access_key, self.secret_key)


def _s3_client(endpoint: str, access_key: str, secret_key: str) -> S3Client:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the moto server exited with {process.returncode}:\n"
                        f"{log.read_text(errors='replace')[-4000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/moto-api/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    pytest.fail(f"the moto server did not answer within 60 s:\n"
                f"{log.read_text(errors='replace')[-4000:]}")


def _s3_user(endpoint: str) -> tuple[str, str]:
    """An IAM user allowed everything on S3, made with the server's unauthenticated actions."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="nentang")
    iam.put_user_policy(UserName="nentang", PolicyName="attachments", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="nentang")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    # IAM authentication starts after the three actions that create the S3 user.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        _wait_until_serving(process, port, log)
        endpoint = f"http://127.0.0.1:{port}"
        server = Moto(endpoint, *_s3_user(endpoint))
        server.client.create_bucket(Bucket=BUCKET)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- both backends -------------------------------------------------------------------------

@dataclass
class Store:
    name: str
    storage: AttachmentStorage
    leftovers: Callable[[], list[str]]
    """The files or objects, temporary ones included, that the test has left in the backend."""


def _local_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    root = tmp_path / "attachments"
    return Store("local", storage_from_url(root.as_uri()), lambda: _local_files(root))


@pytest.fixture(scope="module")
def s3_storage(moto: Moto) -> AttachmentStorage:
    """Made from its URL, with credentials in the standard variables, as a deployment does."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", moto.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", moto.secret_key)
        return storage_from_url(
            f"s3://{BUCKET}/{S3_PREFIX}?endpoint={moto.endpoint}&region={REGION}")


@pytest.fixture
def s3_store(s3_storage: AttachmentStorage, moto: Moto) -> Store:
    def keys() -> set[str]:
        listing = moto.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{S3_PREFIX}/")
        return {item["Key"].removeprefix(f"{S3_PREFIX}/") for item in listing.get("Contents", [])}

    before = keys()
    return Store("s3", s3_storage, lambda: sorted(keys() - before))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> Store:
    found: Store = request.getfixturevalue(f"{request.param}_store")
    return found


# --- content ------------------------------------------------------------------------------

def _pdf(size: int = 4096) -> bytes:
    start = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    end = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    filler = random.Random(size).randbytes(max(0, size - len(start) - len(end)))
    return start + filler + end


def _jpeg() -> bytes:
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + random.Random(1).randbytes(2000) + b"\xff\xd9")


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(2).randbytes(2000)


CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_DOCUMENT = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
                   "officeDocument")
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
SHEET_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def _content_types(overrides: dict[str, str]) -> str:
    parts = "".join(f'<Override PartName="{name}" ContentType="{media_type}"/>'
                    for name, media_type in overrides.items())
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="{CT_NS}">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f"{parts}</Types>")


def _relationships(target: str, mode: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{REL_NS}">'
            f'<Relationship Id="rId1" Type="{OFFICE_DOCUMENT}" Target="{target}"{mode}/>'
            "</Relationships>")


def _zip(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members.items():
            package.writestr(name, data)
    return buffer.getvalue()


def _docx(replace: dict[str, str | bytes] | None = None) -> bytes:
    members: dict[str, str | bytes] = {
        "[Content_Types].xml": _content_types({"/word/document.xml": WORD_MAIN}),
        "_rels/.rels": _relationships("word/document.xml"),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
            'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Đơn xin '
            "việc</w:t></w:r></w:p></w:body></w:document>"),
    }
    return _zip({**members, **(replace or {})})


def _xlsx() -> bytes:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    return _zip({
        "[Content_Types].xml": _content_types({
            "/xl/workbook.xml": SHEET_MAIN,
            "/xl/worksheets/sheet1.xml":
                "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
        }),
        "_rels/.rels": _relationships("/xl/workbook.xml"),
        "xl/workbook.xml": (f'<workbook xmlns="{main}" xmlns:r="{rels}"><sheets>'
                            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{REL_NS}"><Relationship Id="rId1" Type="{rels}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData/></worksheet>',
    })


def _billion_laughs() -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?><!DOCTYPE Types [{"".join(entities)}]>'
            f'<Types xmlns="{CT_NS}"><Default Extension="x" ContentType="&lol9;"/>'
            f'<Override PartName="/word/document.xml" ContentType="{WORD_MAIN}"/></Types>')


def _with_duplicate_content_types() -> bytes:
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), \
            zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", _content_types({"/word/document.xml": WORD_MAIN}))
        package.writestr("_rels/.rels", _relationships("word/document.xml"))
        package.writestr("word/document.xml", "<document/>")
        package.writestr("[Content_Types].xml", _content_types({}))
    return buffer.getvalue()


async def _chunks(data: bytes, size: int = 64 * 1024, first: int = 3) -> AsyncIterator[bytes]:
    """``data`` in chunks, the first shorter than a magic number."""
    yield data[:first]
    for start in range(first, len(data), size):
        yield data[start:start + size]


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(64 * 1024):
        yield chunk


def _upload_file(data: bytes, filename: str, content_type: str) -> UploadFile:
    return UploadFile(io.BytesIO(data), size=len(data), filename=filename,
                      headers=Headers({"content-type": content_type}))


async def _read(storage: AttachmentStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.open(key)])


# --- tests --------------------------------------------------------------------------------

async def test_round_trip_records_sha256_and_size(store: Store) -> None:
    data = _pdf(2 * 1024 * 1024 + 12345)
    stored = await store_upload(store.storage, _chunks(data), max_bytes=4 * 1024 * 1024,
                                allowed=ct.ATTACHMENT_TYPES)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert stored.media_type == ct.PDF
    assert await store.storage.exists(stored.key)
    assert await _read(store.storage, stored.key) == data
    assert store.leftovers() == [stored.key]


async def test_s3_objects_carry_the_recorded_sha256(s3_store: Store, moto: Moto) -> None:
    stored = await store_upload(s3_store.storage, _chunks(_png()), max_bytes=LIMIT,
                                allowed=ct.ATTACHMENT_TYPES)
    assert isinstance(s3_store.storage, S3Storage)
    head = moto.client.head_object(Bucket=BUCKET, ChecksumMode="ENABLED",
                                   Key=f"{s3_store.storage.prefix}/{stored.key}")
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(stored.sha256)).decode()


async def test_s3_a_corrupted_object_fails_to_read(s3_store: Store, moto: Moto) -> None:
    """moto does not check a checksum on receipt (S3 does), which lets the test plant bytes
    that do not match the stored SHA-256; the read must notice."""
    stored = await store_upload(s3_store.storage, _chunks(_pdf()), max_bytes=LIMIT,
                                allowed=ct.ATTACHMENT_TYPES)
    assert isinstance(s3_store.storage, S3Storage)
    original = base64.b64encode(bytes.fromhex(stored.sha256)).decode()
    moto.client.put_object(Bucket=BUCKET, Key=f"{s3_store.storage.prefix}/{stored.key}",
                           Body=_pdf(5000), ChecksumAlgorithm="SHA256", ChecksumSHA256=original)
    with pytest.raises(StorageError):
        await _read(s3_store.storage, stored.key)


async def test_an_upload_of_exactly_the_limit_is_accepted(store: Store) -> None:
    data = _pdf(LIMIT)
    stored = await store_upload(store.storage, _chunks(data), max_bytes=LIMIT,
                                allowed=ct.ATTACHMENT_TYPES)
    assert stored.size == LIMIT
    assert store.leftovers() == [stored.key]


@pytest.mark.parametrize("make", [_pdf, _docx], ids=["pdf", "docx"])
async def test_an_upload_over_the_limit_leaves_nothing(store: Store,
                                                       make: Callable[[], bytes]) -> None:
    data = make()
    with pytest.raises(TooLarge) as refused:
        await store_upload(store.storage, _chunks(data, size=100), max_bytes=len(data) - 1,
                           allowed=ct.ATTACHMENT_TYPES)
    assert refused.value.limit == len(data) - 1
    assert store.leftovers() == []


async def test_a_put_over_the_limit_leaves_nothing(store: Store) -> None:
    key = new_key()
    with pytest.raises(TooLarge):
        await store.storage.put(key, _chunks(b"x" * 10_000, size=1000), max_bytes=9_999)
    assert not await store.storage.exists(key)
    assert store.leftovers() == []


async def test_a_cancelled_upload_leaves_nothing(store: Store) -> None:
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield _pdf(200_000)
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    upload = asyncio.create_task(store_upload(store.storage, stalled(), max_bytes=LIMIT,
                                              allowed=ct.ATTACHMENT_TYPES))
    await started.wait()
    if store.name == "local":
        assert len(store.leftovers()) == 1
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert store.leftovers() == []


@pytest.mark.parametrize(("data", "filename", "declared", "detected"), [
    (_pdf(), "anh-the.jpg", "image/jpeg", ct.PDF),
    (_jpeg(), "don.pdf", "application/pdf", ct.JPEG),
    (_png(), "bang-diem.docx", ct.DOCX, ct.PNG),
    (_docx(), "ho-so.pdf", "application/pdf", ct.DOCX),
], ids=["pdf-as-jpg", "jpeg-as-pdf", "png-as-docx", "docx-as-pdf"])
async def test_the_content_decides_the_type_not_the_name(
        store: Store, data: bytes, filename: str, declared: str, detected: str) -> None:
    upload = _upload_file(data, filename, declared)
    try:
        stored = await store_upload(store.storage, _upload_chunks(upload), max_bytes=LIMIT,
                                    allowed=ct.ATTACHMENT_TYPES)
    finally:
        await upload.close()
    assert stored.media_type == detected
    assert await _read(store.storage, stored.key) == data


@pytest.mark.parametrize(("data", "filename", "declared"), [
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(2000), "to-khai.pdf",
     "application/pdf"),
    (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "to-khai.pdf", "application/pdf"),
    (random.Random(7).randbytes(5000), "to-khai.pdf", "application/pdf"),
    (b"  %PDF-1.7\n" + bytes(100), "to-khai.pdf", "application/pdf"),
    (b"", "to-khai.pdf", "application/pdf"),
    (b"%PD", "to-khai.pdf", "application/pdf"),
], ids=["exe", "html", "random", "pdf-not-at-start", "empty", "truncated-magic"])
async def test_other_content_under_an_allowed_name_is_refused(
        store: Store, data: bytes, filename: str, declared: str) -> None:
    upload = _upload_file(data, filename, declared)
    try:
        with pytest.raises(UnsupportedType) as refused:
            await store_upload(store.storage, _upload_chunks(upload), max_bytes=LIMIT,
                               allowed=ct.ATTACHMENT_TYPES)
    finally:
        await upload.close()
    assert refused.value.detected is None
    assert store.leftovers() == []


async def test_a_known_type_outside_the_allowed_set_is_refused(store: Store) -> None:
    with pytest.raises(UnsupportedType) as refused:
        await store_upload(store.storage, _chunks(_png()), max_bytes=LIMIT,
                           allowed=frozenset({ct.PDF}))
    assert refused.value.detected == ct.PNG
    with pytest.raises(UnsupportedType) as refused:
        await store_upload(store.storage, _chunks(_xlsx()), max_bytes=LIMIT,
                           allowed=frozenset({ct.PDF, ct.DOCX}))
    assert refused.value.detected == ct.XLSX
    assert store.leftovers() == []


@pytest.mark.parametrize(("make", "media_type"), [(_docx, ct.DOCX), (_xlsx, ct.XLSX)],
                         ids=["docx", "xlsx"])
async def test_office_documents_are_recognised(store: Store, make: Callable[[], bytes],
                                               media_type: str) -> None:
    data = make()
    stored = await store_upload(store.storage, _chunks(data, size=50), max_bytes=LIMIT,
                                allowed=ct.ATTACHMENT_TYPES)
    assert stored.media_type == media_type
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await _read(store.storage, stored.key) == data
    assert store.leftovers() == [stored.key]


BOMB_BYTES = 32 * 1024 * 1024

PACKAGES_THAT_ARE_NOT_DOCUMENTS: dict[str, Callable[[], bytes]] = {
    "plain-zip": lambda: _zip({"readme.txt": "xin chào", "data.csv": "a,b\n1,2\n"}),
    "content-types-bomb": lambda: _docx({"[Content_Types].xml": (
        f'<?xml version="1.0"?><Types xmlns="{CT_NS}">'.encode()
        + b" " * BOMB_BYTES
        + f'<Override PartName="/word/document.xml" ContentType="{WORD_MAIN}"/></Types>'
        .encode())}),
    "billion-laughs": lambda: _docx({"[Content_Types].xml": _billion_laughs()}),
    "duplicate-names": _with_duplicate_content_types,
    "macros": lambda: _docx({
        "[Content_Types].xml": _content_types({
            "/word/document.xml": WORD_MAIN,
            "/word/vbaProject.bin": "application/vnd.ms-office.vbaProject"}),
        "word/vbaProject.bin": b"\xd0\xcf\x11\xe0"}),
    "macro-enabled-main-part": lambda: _docx({"[Content_Types].xml": _content_types({
        "/word/document.xml": "application/vnd.ms-word.document.macroEnabled.main+xml"})}),
    "main-part-missing": lambda: _docx({"_rels/.rels": _relationships("word/other.xml")}),
    "external-main-part": lambda: _docx({"_rels/.rels": _relationships(
        "https://example.invalid/document.xml", ' TargetMode="External"')}),
    "no-relationships": lambda: _zip({
        "[Content_Types].xml": _content_types({"/word/document.xml": WORD_MAIN}),
        "word/document.xml": "<document/>"}),
    "truncated": lambda: _docx()[:-40],
}


@pytest.mark.parametrize("make", PACKAGES_THAT_ARE_NOT_DOCUMENTS.values(),
                         ids=PACKAGES_THAT_ARE_NOT_DOCUMENTS.keys())
async def test_zip_packages_that_are_not_office_documents_are_refused(
        store: Store, make: Callable[[], bytes]) -> None:
    data = make()
    assert len(data) < LIMIT
    started = time.monotonic()
    with pytest.raises(UnsupportedType) as refused:
        await store_upload(store.storage, _chunks(data), max_bytes=LIMIT,
                           allowed=ct.ATTACHMENT_TYPES)
    assert time.monotonic() - started < 5
    assert refused.value.detected == ct.ZIP
    assert store.leftovers() == []


async def test_work_a_cancelled_caller_left_running_is_undone(tmp_path: Path) -> None:
    """A thread cannot be stopped: a rename or upload already under way when the upload is
    cancelled still completes, and is then removed."""
    made = tmp_path / "made"
    started, release, undone = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(10)
        made.write_bytes(b"done")

    def undo() -> None:
        made.unlink()
        undone.set()

    task = asyncio.create_task(_finish(work, undo))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.to_thread(undone.wait, 10)
    assert not made.exists()


async def test_delete_removes_a_drafts_files(store: Store) -> None:
    kept = await store_upload(store.storage, _chunks(_jpeg()), max_bytes=LIMIT,
                              allowed=ct.ATTACHMENT_TYPES)
    draft = [(await store_upload(store.storage, _chunks(make()), max_bytes=LIMIT,
                                 allowed=ct.ATTACHMENT_TYPES)).key for make in (_pdf, _docx)]
    await delete_all(store.storage, [*draft, new_key()])
    for key in draft:
        assert not await store.storage.exists(key)
        with pytest.raises(NotFound):
            await store.storage.open(key)
    assert store.leftovers() == [kept.key]
    await store.storage.delete(draft[0])


async def test_opening_what_is_not_there_is_not_found(store: Store) -> None:
    key = new_key()
    assert not await store.storage.exists(key)
    with pytest.raises(NotFound) as missing:
        await store.storage.open(key)
    assert missing.value.key == key


@pytest.mark.parametrize("key", [
    "../x", "../../etc/passwd", "/etc/passwd", "ab/../../x", "ab/./x", ".upload-x", "",
    "a//b", "a/", "a\\b", "x\n", "ab/cd\x00", "é", "a" * 200, "/".join("a" * 9),
])
async def test_keys_that_could_escape_are_refused(store: Store, tmp_path: Path,
                                                  key: str) -> None:
    for attempt in (
        lambda: store.storage.put(key, _chunks(_pdf()), max_bytes=LIMIT),
        lambda: store.storage.open(key),
        lambda: store.storage.delete(key),
        lambda: store.storage.exists(key),
    ):
        with pytest.raises(InvalidKey):
            await attempt()
    assert store.leftovers() == []
    assert await asyncio.to_thread(os.listdir, tmp_path) in ([], ["attachments"])


async def test_local_files_are_private_to_the_service(tmp_path: Path) -> None:
    root = tmp_path / "var" / "attachments"
    storage = LocalDirectoryStorage(root)
    stored = await store_upload(storage, _chunks(_pdf()), max_bytes=LIMIT,
                                allowed=ct.ATTACHMENT_TYPES)
    path = root / stored.key
    for node in (root, path.parent, path):
        assert node.stat().st_mode & 0o077 == 0, node


async def test_local_storage_that_cannot_be_written_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    storage = LocalDirectoryStorage(blocker / "attachments")
    with pytest.raises(StorageError):
        await store_upload(storage, _chunks(_pdf()), max_bytes=LIMIT,
                           allowed=ct.ATTACHMENT_TYPES)


async def _every_operation_fails(storage: S3Storage) -> None:
    key = new_key()
    with pytest.raises(StorageError) as failed:
        await store_upload(storage, _chunks(_pdf()), max_bytes=LIMIT,
                           allowed=ct.ATTACHMENT_TYPES)
    assert not isinstance(failed.value, NotFound)
    for attempt in (lambda: storage.exists(key), lambda: storage.open(key),
                    lambda: storage.delete(key)):
        with pytest.raises(StorageError) as failed:
            await attempt()
        assert not isinstance(failed.value, NotFound)


async def test_s3_a_missing_bucket_is_a_storage_error(moto: Moto) -> None:
    storage = S3Storage("no-such-bucket", endpoint_url=moto.endpoint, region=REGION,
                        access_key=moto.access_key, secret_key=moto.secret_key)
    await _every_operation_fails(storage)


async def test_s3_an_unreachable_server_is_a_storage_error() -> None:
    storage = S3Storage(BUCKET, endpoint_url=f"http://127.0.0.1:{_free_port()}", region=REGION,
                        access_key="unused", secret_key="unused", max_attempts=1)
    await _every_operation_fails(storage)


@pytest.mark.parametrize("credentials", ["wrong-secret", "unknown-key"])
async def test_s3_bad_credentials_are_a_storage_error(moto: Moto, credentials: str) -> None:
    access_key = moto.access_key if credentials == "wrong-secret" else "AKIAUNKNOWN000000000"
    prefix = f"bad-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(BUCKET, endpoint_url=moto.endpoint, region=REGION, prefix=prefix,
                        access_key=access_key, secret_key="not-the-secret")
    await _every_operation_fails(storage)
    assert moto.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("KeyCount") == 0


def test_storage_urls() -> None:
    local = storage_from_url("file:///var/lib/nentang/attachments")
    assert isinstance(local, LocalDirectoryStorage)
    assert local.root == Path("/var/lib/nentang/attachments")
    s3 = storage_from_url("s3://ho-so.attachments/tenant-a/tep/?endpoint=http://127.0.0.1:9000"
                          "&region=ap-southeast-1")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("ho-so.attachments", "tenant-a/tep")
    bare = storage_from_url("s3://ho-so")
    assert isinstance(bare, S3Storage)
    assert bare.prefix == ""


@pytest.mark.parametrize("url", [
    "attachments", "file:attachments", "file://server/share", "file:///a?x=1",
    "s3://", "s3://AB", "s3://key:secret@bucket", "s3://bucket?endpont=http://x",
    "s3://bucket?region=a&region=b", "s3://bucket/../x", "http://bucket",
])
def test_malformed_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        storage_from_url(url)


@pytest.mark.parametrize(("head", "media_type"), [
    (b"%PDF-1.4", ct.PDF), (b"\xff\xd8\xff\xdb", ct.JPEG), (b"\x89PNG\r\n\x1a\n", ct.PNG),
    (b"PK\x03\x04\x14\x00", ct.ZIP), (b"PK\x05\x06", None), (b"\x89PNG", None), (b"", None),
    (b"GIF89a", None), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", None), (b"{\\rtf1", None),
])
def test_sniff(head: bytes, media_type: str | None) -> None:
    assert ct.sniff(head) == media_type


@pytest.mark.parametrize(("data", "media_type"), [
    (_pdf(), ct.PDF), (_docx(), ct.DOCX), (_xlsx(), ct.XLSX),
    (_zip({"a.txt": "a"}), ct.ZIP), (b"plain text", None),
])
def test_detect_reads_whole_files(data: bytes, media_type: str | None) -> None:
    assert ct.detect(io.BytesIO(data)) == media_type
