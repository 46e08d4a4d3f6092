"""PDF receipts of signed decisions, sealed with the unit's seal (PAdES B-B, by pyHanko).

A step that issues a document (``"signature": {"receipt": true}``) gets, once its signature
is verified, a one-page PDF stating the decision (unit, case, action, states, form and
workflow versions, signer, the document's digest) with two embedded files: the signed
document itself (the exact RFC 8785 bytes) and the official's signature. The unit's seal
signs the whole PDF, so any PDF reader, or pyHanko's validator, shows whether the receipt is
intact and whose seal it bears.

The visible text uses the standard Helvetica font, which has no Vietnamese glyphs, so it is
written without diacritics; the embedded signed document keeps every character.
"""

from __future__ import annotations

import base64
import binascii
import io
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import embed, generic, writer
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from app.signing.providers import ConfigError


def _plain(text: str) -> str:
    """Latin without diacritics (đ → d), printable in the standard PDF fonts."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode()


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _lines(document: Mapping[str, Any], digest: str, signer: str | None,
           signed_at: datetime) -> list[str]:
    lines = [
        "BIEN NHAN KET QUA GIAI QUYET / RECEIPT OF DECISION",
        "",
        f"Don vi / Unit: {document['tenant']}",
        f"Ho so / Case: {document['case']}",
        f"Thao tac / Action: {document['action']}",
        f"Buoc / Step: {document['from_state']} -> {document['to_state'] or '(no move)'}",
        f"Bieu mau / Form: {document['form']['key']} v{document['form']['version']}",
        f"Quy trinh / Workflow: {document['workflow']['key']} "
        f"v{document['workflow']['version']}",
        f"Nguoi ky / Signed by: {signer or '-'}",
        f"Thoi diem / Signed at: {signed_at.isoformat(timespec='seconds')}",
        f"SHA-256 du lieu ky / of the signed document: {digest[:32]}",
        f"    {digest[32:]}",
        "",
        "Du lieu da ky va chu ky dinh kem trong tep nay (signed-step.json, signature).",
        "The signed document and the signature are attached to this file.",
    ]
    for key, value in sorted(document["data"].items()):
        if isinstance(value, str | int | float | bool) and len(lines) < 45:
            lines.append(f"  {key}: {value}"[:110])
    return [_plain(line) for line in lines]


def _page(pdf: writer.PdfFileWriter, lines: list[str]) -> writer.PageObject:
    operators = ["BT /F1 10 Tf 13 TL 50 790 Td"]
    operators += [f"({_escaped(line)}) Tj T*" for line in lines]
    operators.append("ET")
    stream = generic.StreamObject(stream_data="\n".join(operators).encode("ascii"))
    font = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Font"), pdf_name("/Subtype"): pdf_name("/Type1"),
        pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding")})
    resources = generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
        {pdf_name("/F1"): font})})
    return writer.PageObject(contents=pdf.add_object(stream), media_box=(0, 0, 595, 842),
                             resources=resources)


def _attach(pdf: writer.PdfFileWriter, name: str, data: bytes, mime: str,
            description: str) -> None:
    embed.embed_file(pdf, embed.FileSpec(
        file_spec_string=name, file_name=name, description=description,
        embedded_data=embed.EmbeddedFileObject.from_file_data(pdf, data, mime_type=mime)))


def _seal_signer(seal: Mapping[str, str]) -> signers.SimpleSigner:
    try:
        data = base64.b64decode(seal["pkcs12"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("/seal/pkcs12", "The seal's PKCS#12 file must be base64.") from exc
    try:
        signer: signers.SimpleSigner = signers.SimpleSigner.load_pkcs12_data(
            data, [], passphrase=seal["password"].encode())
    except ValueError as exc:
        raise ConfigError("/seal/password", "The seal's PKCS#12 file cannot be opened with "
                          "this password.") from exc
    return signer


def check_seal(seal: Mapping[str, str]) -> str:
    """The seal's subject; raises ConfigError when it cannot be used."""
    certificate = _seal_signer(seal).signing_cert
    if certificate is None:
        raise ConfigError("/seal/pkcs12", "The seal's PKCS#12 file holds no certificate.")
    return str(certificate.subject.human_friendly)


async def issue(document: Mapping[str, Any], content: bytes, signature: bytes, digest: str,
                signer: str | None, signed_at: datetime, seal: Mapping[str, str]) -> bytes:
    pdf = writer.PdfFileWriter()
    pdf.insert_page(_page(pdf, _lines(document, digest, signer, signed_at)))
    _attach(pdf, "signed-step.json", content, "application/json",
            "The signed document (RFC 8785 canonical JSON)")
    cms = signature[:1] == b"\x30"
    _attach(pdf, "signature.p7s" if cms else "signature.jws", signature,
            "application/pkcs7-signature" if cms else "application/jose",
            "The official's signature over the signed document")
    unsigned = io.BytesIO()
    pdf.write(unsigned)
    unsigned.seek(0)
    metadata = signers.PdfSignatureMetadata(field_name="DonViDongDau",
                                            subfilter=fields.SigSeedSubFilter.PADES,
                                            reason="Receipt of a signed decision")
    sealed = await signers.PdfSigner(metadata, signer=_seal_signer(seal)).async_sign_pdf(
        IncrementalPdfFileWriter(unsigned))
    return bytes(sealed.getvalue())


async def intact(receipt: bytes, trust_anchors: tuple[bytes, ...], moment: datetime) -> bool:
    """Whether the receipt's seal still covers the whole file and chains to an anchor."""
    try:
        embedded = PdfFileReader(io.BytesIO(receipt)).embedded_signatures
        if len(embedded) != 1:
            return False
        status = await async_validate_pdf_signature(embedded[0], ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(a) for a in trust_anchors],
            moment=moment, allow_fetching=False))
        return bool(status.bottom_line)
    except Exception:  # a damaged file is simply not intact
        return False
