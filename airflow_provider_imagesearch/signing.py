"""Huawei Cloud API Gateway request signing (``SDK-HMAC-SHA256``).

The algorithm is the one in Huawei's API Request Signing Guide and in ``huaweicloudsdkcore``'s
``Signer``: a canonical request is hashed, the hash is put in a string to sign, and the string is
HMAC-SHA256'd with the secret key. The emulator verifies signatures with the same functions, and the
test suite checks them against the published example and against ``huaweicloudsdkcore`` itself.

Implemented here rather than imported from ``huaweicloudsdkcore`` because that package pulls in a
large dependency tree (and its own HTTP stack) for ~60 lines of hashing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _uri_encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Each path segment URI-encoded (RFC 3986, ``~`` kept), always ending in ``/``."""
    encoded = "/".join(_uri_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query_string(query: Iterable[tuple[str, str]]) -> str:
    # Sorted on the raw names and values, then encoded, as huaweicloudsdkcore's Signer does.
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    # The SDK signs every header it sends except names containing "_" (gateways may drop those).
    return sorted(name.lower() for name in headers if "_" not in name)


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    if not body:
        return EMPTY_BODY_SHA256
    for name, value in headers.items():
        if name.lower() == CONTENT_SHA256_HEADER.lower():
            return value
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed_headers)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query_string(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash(body, headers),
        )
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def format_sdk_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def sign_headers(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    query: Iterable[tuple[str, str]] = (),
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Host``, ``X-Sdk-Date`` and ``Authorization`` for one request.

    :param host: the ``Host`` header exactly as it will be sent (``name`` or ``name:port``).
    :param path: the request path, without query string.
    """
    signed = dict(headers)
    if not any(name.lower() == "host" for name in signed):
        signed["Host"] = host
    if not any(name.lower() == DATE_HEADER.lower() for name in signed):
        signed[DATE_HEADER] = format_sdk_date(now or datetime.now(UTC))
    sdk_date = next(v for k, v in signed.items() if k.lower() == DATE_HEADER.lower())
    names = signed_header_names(signed)
    canonical = canonical_request(method, path, query, signed, names, body)
    sig = signature(secret_key, string_to_sign(canonical, sdk_date))
    signed["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return signed


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Parse an ``SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`` header; None if malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    try:
        return ParsedAuthorization(
            access_key=parts["Access"],
            signed_headers=[h for h in parts["SignedHeaders"].split(";") if h],
            signature=parts["Signature"],
        )
    except KeyError:
        return None


def verify_signature(
    *,
    secret_key: str,
    authorization: ParsedAuthorization,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Check a signed request the way the gateway does (used by the emulator)."""
    sdk_date = next((v for k, v in headers.items() if k.lower() == DATE_HEADER.lower()), None)
    if sdk_date is None:
        return False
    canonical = canonical_request(method, path, query, headers, authorization.signed_headers, body)
    expected = signature(secret_key, string_to_sign(canonical, sdk_date))
    return hmac.compare_digest(expected, authorization.signature)
