"""What an uploaded attachment really is, judged by its bytes.

The file name and the declared ``Content-Type`` come from the client and are ignored: the type
recorded for an attachment is the one found here. :func:`sniff` reads the magic number, which
must be at offset 0 (readers that tolerate bytes before a PDF header are how polyglot files are
made). PDF, JPEG and PNG are told by that alone; Word (``.docx``) and Excel (``.xlsx``)
documents are ZIP packages, which only :func:`detect` can tell from any other ZIP, by reading
the package's ``[Content_Types].xml`` and ``_rels/.rels`` to find the main part and its
content type. Four signatures need no library, and ``filetype``, the obvious one, calls a ZIP an
Office document from the names of its first members, which any ZIP can imitate.

A package is read without trusting it: at most :data:`MAX_MEMBERS` entries, duplicate names
refused (two parsers could pick different ones), each XML part decompressed to at most
:data:`MAX_PART_BYTES` whatever its header claims, and parsed with DTDs and entities forbidden.
A package with a VBA project is not a ``.docx``/``.xlsx`` even if its main part says so, and is
reported as a plain ZIP.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from collections.abc import Mapping
from typing import IO
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ATTACHMENT_TYPES: frozenset[str] = frozenset({PDF, JPEG, PNG, DOCX, XLSX})
"""The types an eForm attachment may have unless a form narrows them."""
OOXML_TYPES: frozenset[str] = frozenset({DOCX, XLSX})

SNIFF_BYTES = 8
"""How many leading bytes :func:`sniff` needs to decide."""
MAX_MEMBERS = 10_000
MAX_PART_BYTES = 1024 * 1024

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"PK\x03\x04", ZIP),
)

_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_RELATIONSHIPS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_DOCUMENT_RELATIONSHIPS = frozenset({
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
})
_MAIN_PARTS: Mapping[str, str] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
_VBA_PROJECT = "application/vnd.ms-office.vbaproject"

# What a damaged or hostile archive can raise from zipfile, zlib or the XML parser.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
               NotImplementedError, ParseError, DefusedXmlException)


def sniff(head: bytes) -> str | None:
    """The media type that ``head`` (the first bytes of a file) announces, or None.

    A ZIP is reported as :data:`ZIP`; whether it is an Office document needs the whole file
    (:func:`detect`).
    """
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    return None


def detect(file: IO[bytes]) -> str | None:
    """The media type of a complete, seekable file, Office documents included.

    Reads from the start and leaves the position unspecified.
    """
    file.seek(0)
    media_type = sniff(file.read(SNIFF_BYTES))
    if media_type == ZIP:
        return ooxml_type(file) or ZIP
    return media_type


def ooxml_type(file: IO[bytes]) -> str | None:
    """:data:`DOCX` or :data:`XLSX` if ``file`` is such a package, else None."""
    try:
        with zipfile.ZipFile(file) as package:
            return _main_part_type(package)
    except _UNREADABLE:
        return None


def _main_part_type(package: zipfile.ZipFile) -> str | None:
    members = package.infolist()
    if len(members) > MAX_MEMBERS:
        return None
    by_name = {info.filename.lower(): info for info in members}
    if len(by_name) != len(members):
        return None
    content_types = _read_xml(package, by_name.get("[content_types].xml"))
    relationships = _read_xml(package, by_name.get("_rels/.rels"))
    if content_types is None or relationships is None:
        return None

    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for element in content_types:
        media_type = element.get("ContentType", "").strip().lower()
        if element.tag == f"{_CONTENT_TYPES_NS}Default":
            defaults[element.get("Extension", "").lower()] = media_type
        elif element.tag == f"{_CONTENT_TYPES_NS}Override":
            overrides[element.get("PartName", "").lower()] = media_type
    if _VBA_PROJECT in defaults.values() or _VBA_PROJECT in overrides.values():
        return None

    main_part = _main_part_name(relationships)
    if main_part is None or main_part.lstrip("/") not in by_name:
        return None
    extension = posixpath.splitext(main_part)[1].lstrip(".")
    return _MAIN_PARTS.get(overrides.get(main_part) or defaults.get(extension, ""))


def _main_part_name(relationships: Element) -> str | None:
    """The package's main part as a lower-case absolute part name (``/word/document.xml``)."""
    for relationship in relationships.iter(f"{_RELATIONSHIPS_NS}Relationship"):
        if (relationship.get("Type") in _OFFICE_DOCUMENT_RELATIONSHIPS
                and relationship.get("TargetMode", "Internal") == "Internal"):
            target = relationship.get("Target", "")
            name = posixpath.normpath(posixpath.join("/", target)).lower()
            return name if name.startswith("/") and not name.startswith("//") else None
    return None


def _read_xml(package: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> Element | None:
    if info is None or info.is_dir():
        return None
    with package.open(info) as member:
        data = member.read(MAX_PART_BYTES + 1)
    if len(data) > MAX_PART_BYTES:
        return None
    root: Element = fromstring(data, forbid_dtd=True)
    return root
