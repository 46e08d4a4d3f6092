"""Where eForm attachments are kept, and the checks an upload passes on its way there.

A backend is named by a URL (:func:`storage_from_url`):

``file:///var/lib/nentang/attachments``
    A local directory, given by its absolute path; created private to the service's user when
    missing. The default.
``s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME]``
    An S3-compatible bucket, objects under ``PREFIX/``. ``endpoint`` is the service's base URL
    for anything other than AWS itself (MinIO, Ceph, a provider's object storage) and switches to
    path-style addressing; percent-encode it if it has a query of its own. ``region`` defaults
    to botocore's own resolution (``AWS_DEFAULT_REGION``, the config file). Credentials never go
    in the URL: they come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) or the rest of botocore's credential chain.

Every backend stores all or nothing: a write that fails, goes past its size limit or is
cancelled leaves no file or object behind. Keys are relative, slash-separated names of
:data:`KEY_PATTERN`; :func:`new_key` makes random ones.

:func:`store_upload` is the way in for a client's upload: it sniffs the content
(:mod:`app.forms.content_types`), refuses a type not allowed before anything is written, and
records the SHA-256 and size of exactly the bytes stored.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.forms import content_types

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("nentang.forms")

T = TypeVar("T")

CHUNK_BYTES = 64 * 1024
SPOOL_MEMORY_BYTES = 1024 * 1024
"""Above this an upload being checked or sent to S3 is spooled to a temporary file."""

KEY_PATTERN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}")
"""Up to eight segments, none starting with a dot: no ``..``, no absolute path, no hidden
name (the local backend's temporary files start with a dot)."""

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageError(Exception):
    """The backend failed: I/O, network, permissions, credentials, a missing bucket."""


class NotFound(StorageError):
    """Nothing is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no attachment is stored under {key!r}")
        self.key = key


class InvalidKey(ValueError):
    """A key not of :data:`KEY_PATTERN`."""


class UploadRejected(Exception):
    """The upload itself is not acceptable: the client's doing, not the backend's."""


class TooLarge(UploadRejected):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than {limit} bytes")
        self.limit = limit


class UnsupportedType(UploadRejected):
    """The content is not of an allowed type; ``detected`` is None when it is of no known type."""

    def __init__(self, detected: str | None) -> None:
        super().__init__(f"content of type {detected or 'unknown'} is not accepted")
        self.detected = detected


@dataclass(frozen=True)
class PutResult:
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str
    media_type: str


class AttachmentStorage(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        """Store ``chunks`` under ``key``, all or nothing; :class:`TooLarge` past ``max_bytes``."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks; :class:`NotFound` before any chunk if nothing is there."""

    async def delete(self, key: str) -> None:
        """Remove what is under ``key``; nothing there is not an error."""

    async def exists(self, key: str) -> bool:
        ...


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKey(f"not a valid attachment key: {key!r}")
    return key


def new_key() -> str:
    """A random key, fanned out over 256 directories by its first two hex digits."""
    name = uuid.uuid4().hex
    return f"{name[:2]}/{name}"


async def _copy(chunks: AsyncIterable[bytes], out: IO[bytes], max_bytes: int) -> PutResult:
    """Write ``chunks`` to ``out``, checking the size before each write."""
    digest = hashlib.sha256()

    def write(chunk: bytes) -> None:
        out.write(chunk)
        digest.update(chunk)

    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(max_bytes)
        await asyncio.to_thread(write, chunk)
    return PutResult(size, digest.hexdigest())


async def _chunks_of(source: IO[bytes]) -> AsyncIterator[bytes]:
    await asyncio.to_thread(source.seek, 0)
    while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
        yield chunk


async def _finish(work: Callable[[], T], undo: Callable[[], None]) -> T:
    """Run ``work`` in a thread, undoing it if the caller is cancelled meanwhile.

    A thread cannot be stopped: cancelled, ``work`` still runs to its end (an upload completes,
    a rename happens), so once it has succeeded ``undo`` removes what it made.
    """
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(partial(_undo_if_done, undo))
        raise


def _undo_if_done(undo: Callable[[], None], future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.get_loop().run_in_executor(None, undo)


class LocalDirectoryStorage:
    """Files under ``root``, written to a temporary file beside the target and renamed into
    place, so a reader never sees half a file. Directories are 0700 and files 0600."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        target = self._path(key)
        try:
            out, temporary = await asyncio.to_thread(self._create_temporary, key)
        except OSError as error:
            raise StorageError(f"cannot write attachment {key!r}: {error}") from error
        try:
            written = await _copy(chunks, out, max_bytes)
            await _finish(partial(self._commit, out, temporary, target),
                          partial(self._remove_quietly, target))
        except OSError as error:
            raise StorageError(f"cannot write attachment {key!r}: {error}") from error
        finally:
            out.close()
            temporary.unlink(missing_ok=True)
        return written

    def _create_temporary(self, key: str) -> tuple[IO[bytes], Path]:
        directory = self.root
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for segment in key.split("/")[:-1]:
            directory = directory / segment
            directory.mkdir(mode=0o700, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        return os.fdopen(fd, "wb"), Path(name)

    @staticmethod
    def _commit(out: IO[bytes], temporary: Path, target: Path) -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @staticmethod
    def _remove_quietly(target: Path) -> None:
        try:
            target.unlink(missing_ok=True)
        except OSError:
            logger.exception("could not remove the cancelled attachment %s", target)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound(key)
        return self._read(path, key)

    async def _read(self, path: Path, key: str) -> AsyncIterator[bytes]:
        try:
            source = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as error:
            raise NotFound(key) from error
        except OSError as error:
            raise StorageError(f"cannot read attachment {key!r}: {error}") from error
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(source.read, CHUNK_BYTES)
                except OSError as error:
                    raise StorageError(f"cannot read attachment {key!r}: {error}") from error
                if not chunk:
                    return
                yield chunk
        finally:
            source.close()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as error:
            raise StorageError(f"cannot delete attachment {key!r}: {error}") from error

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)


class S3Storage:
    """Objects in an S3-compatible bucket, under ``prefix/``.

    boto3 runs in worker threads rather than aiobotocore on the event loop: its clients are
    thread-safe, a thread per call costs nothing next to a network round trip, and aiobotocore
    pins botocore to narrow ranges that fight every other AWS package. An upload is spooled
    (in memory up to :data:`SPOOL_MEMORY_BYTES`, then on disk) so the size limit is enforced
    before anything is sent, then sent in one PUT (so at most 5 GiB) with its SHA-256, which the
    service checks on receipt and botocore again on every read.
    """

    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, prefix: str = "",
                 max_attempts: int = 3) -> None:
        self.bucket = bucket
        self.prefix = check_key(prefix.strip("/")) if prefix.strip("/") else ""
        config = Config(
            connect_timeout=10, read_timeout=60,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        session = boto3.session.Session(aws_access_key_id=access_key,
                                        aws_secret_access_key=secret_key, region_name=region)
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _failure(self, action: str, name: str, error: Exception) -> StorageError:
        return StorageError(f"cannot {action} s3://{self.bucket}/{name}: {error}")

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        name = self._name(key)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
            try:
                written = await _copy(chunks, spool, max_bytes)
            except OSError as error:
                raise StorageError(f"cannot spool attachment {key!r}: {error}") from error
            try:
                await _finish(partial(self._upload, name, spool, written),
                              partial(self._remove_quietly, name))
            except (BotoCoreError, ClientError, OSError) as error:
                raise self._failure("write", name, error) from error
        return written

    def _upload(self, name: str, spool: IO[bytes], written: PutResult) -> None:
        spool.seek(0)
        checksum = base64.b64encode(bytes.fromhex(written.sha256)).decode("ascii")
        self._client.put_object(Bucket=self.bucket, Key=name, Body=spool,
                                ContentLength=written.size, ChecksumAlgorithm="SHA256",
                                ChecksumSHA256=checksum)

    def _remove_quietly(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError):
            logger.exception("could not remove the cancelled attachment s3://%s/%s",
                             self.bucket, name)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        if not await self.exists(key):
            raise NotFound(key)
        return self._read(key)

    async def _read(self, key: str) -> AsyncIterator[bytes]:
        name = self._name(key)
        try:
            response = await asyncio.to_thread(
                partial(self._client.get_object, Bucket=self.bucket, Key=name,
                        ChecksumMode="ENABLED"))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                raise NotFound(key) from error
            raise self._failure("read", name, error) from error
        except BotoCoreError as error:
            raise self._failure("read", name, error) from error
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(body.read, CHUNK_BYTES)
                except (BotoCoreError, ClientError, OSError) as error:
                    raise self._failure("read", name, error) from error
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            await asyncio.to_thread(
                partial(self._client.delete_object, Bucket=self.bucket, Key=name))
        except (BotoCoreError, ClientError) as error:
            raise self._failure("delete", name, error) from error

    async def exists(self, key: str) -> bool:
        """Whether the object exists; a missing bucket is a :class:`StorageError`, not False
        (a HEAD cannot tell the two apart, so a miss asks about the bucket too)."""
        name = self._name(key)
        try:
            await asyncio.to_thread(
                partial(self._client.head_object, Bucket=self.bucket, Key=name))
        except ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                raise self._failure("look up", name, error) from error
        except BotoCoreError as error:
            raise self._failure("look up", name, error) from error
        else:
            return True
        try:
            await asyncio.to_thread(partial(self._client.head_bucket, Bucket=self.bucket))
        except (BotoCoreError, ClientError) as error:
            raise self._failure("look up", name, error) from error
        return False


def storage_from_url(url: str) -> AttachmentStorage:
    """The backend a URL names; the forms are in the module docstring. ValueError if malformed."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ValueError("a file URL is file:///absolute/path, with no host or query")
        root = Path(unquote(parts.path))
        if not root.is_absolute():
            raise ValueError("a file URL needs an absolute path")
        return LocalDirectoryStorage(root)
    if parts.scheme == "s3":
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials do not belong in the storage URL")
        if not _BUCKET.fullmatch(parts.netloc):
            raise ValueError(f"not a valid bucket name: {parts.netloc!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"endpoint", "region"})
        if unknown or any(len(values) != 1 for values in query.values()) or parts.fragment:
            raise ValueError(f"an s3 URL takes endpoint and region once each, not {unknown}")
        prefix = unquote(parts.path).strip("/")
        if prefix and not KEY_PATTERN.fullmatch(prefix):
            raise ValueError(f"not a valid key prefix: {prefix!r}")
        return S3Storage(parts.netloc, endpoint_url=query.get("endpoint", [""])[0] or None,
                         region=query.get("region", [""])[0] or None, prefix=prefix)
    raise ValueError(f"attachment storage URLs are file: or s3:, not {parts.scheme or url!r}")


async def _head(stream: AsyncIterator[bytes]) -> tuple[bytes, list[bytes]]:
    """The first :data:`~app.forms.content_types.SNIFF_BYTES` of ``stream`` (fewer if it ends
    sooner) and the chunks read to get them."""
    head = b""
    taken: list[bytes] = []
    while len(head) < content_types.SNIFF_BYTES:
        chunk = await anext(stream, None)
        if chunk is None:
            break
        taken.append(chunk)
        head += chunk[:content_types.SNIFF_BYTES - len(head)]
    return head, taken


async def _chain(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk


async def store_upload(storage: AttachmentStorage, chunks: AsyncIterable[bytes], *,
                       max_bytes: int, allowed: frozenset[str]) -> StoredFile:
    """Store an upload under a new key if its content is of an ``allowed`` media type.

    The type is read from the content, never from a name or declared type. Most types are
    known from the first bytes, and a refused one is refused before the rest is read. A ZIP
    may be an Office document, which takes the whole file: it is spooled and checked before it
    is written. Either way nothing reaches the storage unless it is accepted, and a write that
    fails or goes past ``max_bytes`` leaves nothing behind (:class:`TooLarge`).
    """
    stream = aiter(chunks)
    head, taken = await _head(stream)
    detected = content_types.sniff(head)
    is_package = detected == content_types.ZIP
    if detected is None or not (
            detected in allowed or (is_package and allowed & content_types.OOXML_TYPES)):
        raise UnsupportedType(detected)
    key = new_key()
    if not is_package:
        written = await storage.put(key, _chain(taken, stream), max_bytes=max_bytes)
        return StoredFile(key, written.size, written.sha256, detected)

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        try:
            await _copy(_chain(taken, stream), spool, max_bytes)
        except OSError as error:
            raise StorageError(f"cannot spool the upload: {error}") from error
        detected = await asyncio.to_thread(content_types.detect, spool)
        if detected is None or detected not in allowed:
            raise UnsupportedType(detected)
        written = await storage.put(key, _chunks_of(spool), max_bytes=max_bytes)
    return StoredFile(key, written.size, written.sha256, detected)


async def delete_all(storage: AttachmentStorage, keys: Iterable[str]) -> None:
    """Delete every key, as when a draft goes and its attachments with it.

    Every key is tried even if one fails, so one failure does not leave the rest behind; the
    failures are raised together afterwards.
    """
    failures: list[StorageError] = []
    for key in keys:
        try:
            await storage.delete(key)
        except StorageError as error:
            failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise StorageError(f"{len(failures)} attachments could not be deleted: "
                           + "; ".join(str(error) for error in failures))
