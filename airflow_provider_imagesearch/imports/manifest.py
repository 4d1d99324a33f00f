"""Reading an import manifest in chunks, and checking each row.

A manifest is a list of dicts (an XCom value), a CSV / JSON-lines / Parquet file (a local path, an
http(s) URL such as a presigned URL of an OBS or S3 object, or an ``ObjectStoragePath``), or a SQL query
on any SQL connection. It is read in chunks
(:data:`CHUNK_ROWS` rows): pandas ``chunksize`` for CSV, Python's ``json`` line by line for JSON lines
(a byte order mark is dropped; a line that is not a JSON object is an invalid row), pyarrow
``iter_batches`` for Parquet, ``fetchmany`` on a server-side cursor for SQL; a manifest of a million rows
never sits in memory whole.

Columns: ``path`` (required: the image's id in the library, its OBS URL), ``tags`` (a JSON object, a
mapping, or a Parquet/Arrow ``map<string,string>`` column, which arrives as a list of key/value pairs)
and/or ``tag.<key>`` columns (one tag each; an empty cell is no tag), ``file`` (optional: a
local file whose bytes are sent base64; ``path`` is then only the image's id). Other columns are
ignored. Rows are numbered from 1, in manifest order, header excluded.

A row check never raises: whatever a catalogue holds (a lone surrogate from a bad decode, a number too
large for a float, a value of an unexpected type), the row comes back invalid with its reason, and the
import goes on with the others.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_imagesearch.errors import ImageSearchConfigError, ImageSearchValidationError
from airflow_provider_imagesearch.validation import MAX_TAGS

CHUNK_ROWS = 5_000
#: The largest request body sent. The only documented number is API Gateway's: a body over 12 MB is
#: refused 413 APIGW.0201 (imagesearch-api.md §3.2, §6), read here as 12,000,000 bytes, the smaller
#: reading of "MB". The service's own limit (IS.0006 "The request body is too big.", §3.1) has no
#: documented number: a row it refuses is recorded invalid after one send (a refusal code, imports/apis.py).
MAX_BODY_BYTES = 12_000_000
#: The largest image file sent: its base64 (4 bytes per 3: 11,184,812 bytes) leaves 815,188 bytes of
#: MAX_BODY_BYTES for the JSON around it; :func:`check_row` also counts a row's path and tags.
MAX_FILE_BYTES = 8 * 1024 * 1024
TAG_PREFIX = "tag."
FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSION = (".gz", ".bz2", ".zst", ".xz", ".zip")
#: How long a manifest URL may stay silent (connecting, or between two reads) before the read fails.
URL_TIMEOUT_SECONDS = 60.0
#: Query parameters of a presigned URL whose values are masked in logs: any name holding one of these
#: words (S3 v4 and v2, OBS, GCS ``X-Goog-Signature``) or equal to one of the names below (an Azure SAS
#: signs with ``sig``; a POST policy). The names the ImageSearch page cuts out (plugins/render.py).
_SECRET_QUERY_WORDS = ("signature", "credential", "token", "accesskey", "password", "secret")
_SECRET_QUERY_NAMES = ("sig", "policy")
#: C0 and C1 control characters (Unicode category Cc): never part of an image's id.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The column of a raw row that could not be read as a row at all (a JSON-lines line that is not a JSON
#: object): the row check makes it an invalid row with this reason. No manifest has a column so named.
READ_ERROR = "\x00read_error"
#: Byte order marks of the encodings a manifest must not be in (longest first: UTF-32 LE starts with
#: UTF-16 LE's). PowerShell 5's ``Out-File`` and ``>`` write UTF-16 LE with its BOM by default.
_WIDE_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
)
OBS_URL_FORM = (
    "an OBS HTTPS URL of the instance's region, https://{bucket}.obs.{region}.myhuaweicloud.com/{key}"
)


@dataclass
class ReadPosition:
    """How far the reading of a manifest got: ``done`` of ``total`` units (rows, or bytes of a CSV or
    JSON-lines file); ``total`` is None when the source does not know its size (a SQL query)."""

    done: int = 0
    total: int | None = None

    def fraction(self) -> tuple[int, int] | None:
        return (min(self.done, self.total), self.total) if self.total else None


@dataclass(frozen=True)
class ManifestRow:
    """One checked manifest row.

    :param row: its number in the manifest (1 = first data row).
    :param path: the image's id (its OBS URL), or None when the row has none.
    :param tags: the tags to send (empty: none).
    :param file: local file whose bytes are sent, or None.
    :param fingerprint: digest of what is sent (tags + file digest): a rerun sends the row again only
        when it changes.
    :param invalid: why the row cannot be sent, or None.
    """

    row: int
    path: str | None
    tags: dict[str, Any]
    file: str | None
    fingerprint: str
    invalid: str | None = None


def path_key(path: str) -> str:
    """The ledger's key of a path: 32 hex digits of its SHA-256 (paths may be longer than an index allows)."""
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fingerprint(tags: Mapping[str, Any], file_digest: str | None) -> str:
    canonical = json.dumps({"t": tags, "f": file_digest}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def obs_url_re(region: str) -> re.Pattern[str]:
    return re.compile(rf"https://[a-z0-9][a-z0-9.-]{{1,62}}\.obs\.{re.escape(region)}\.myhuaweicloud\.com/.+")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _plain(value: Any) -> Any:
    """numpy/pyarrow containers and scalars -> Python lists and scalars."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return value.tolist()
    return value


def map_pairs(value: Any, field: str) -> Any:
    """A Parquet/Arrow MAP value (pyarrow gives a list of ``(key, value)`` pairs) as a dict; anything else
    unchanged. A key given twice is refused: which of its values was meant is unknown."""
    if not isinstance(value, list | tuple) or not value:
        return value
    if not all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in value):
        return value
    result: dict[Any, Any] = {}
    for key, item in value:
        if key in result:
            raise ImageSearchValidationError(field, "a map whose keys are all different", f"{key!r} twice")
        result[key] = item
    return result


def check_encodable(value: Any, field: str) -> None:
    """Refuse text holding a lone surrogate (a broken decode upstream): it cannot be sent as UTF-8 JSON
    nor stored in the ledger, and one such row must not stop the import."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        raise ImageSearchValidationError(
            field, "valid Unicode text (it holds a lone surrogate, which cannot be encoded)", value
        ) from None


def invalid_reason(error: Exception) -> str:
    """The reason stored for an invalid row: the check's message, or the unexpected error's kind."""
    if isinstance(error, ValueError) and not isinstance(error, UnicodeError | OverflowError):
        reason = str(error)
    else:
        reason = f"unexpected value ({type(error).__name__}: {error})"
    return reason.encode("utf-8", "backslashreplace").decode("utf-8")[:1000]


def _tag_value(key: str, value: Any) -> str | list[str]:
    value = _plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"tag {key!r} must be a string or a non-empty list of strings, not {value!r}"[:300])


def check_no_control_characters(value: str, field: str) -> str:
    """``value`` if it holds no control character (NUL, tab, line break, ...), else a refusal naming ``field``.

    A NUL cannot be stored in a PostgreSQL text column: one such id would fail the ledger write of a
    whole batch of rows.
    """
    if _CONTROL_RE.search(value):
        raise ImageSearchValidationError(
            field, "text without control characters (NUL, tab, line break)", value
        )
    return value


def ledger_key(value: Any) -> str | None:
    """The key an invalid row is remembered by in the ledger: None (reported by row number only) when
    there is none, or when the ledger could not store it (a NUL, a lone surrogate)."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def check_row(raw: Mapping[str, Any], row: int, *, region: str | None) -> ManifestRow:
    """Check one raw row (column -> value); never raises: a bad row comes back with ``invalid`` set."""
    path = raw.get("path")
    path = None if _missing(path) else path
    try:
        if READ_ERROR in raw:
            raise ValueError(raw[READ_ERROR])
        if path is None:
            raise ValueError("no path: the column 'path' is required")
        if not isinstance(path, str):
            raise ValueError(f"path must be a string, not {type(path).__name__}")
        path = path.strip()
        check_no_control_characters(path, "path")
        check_encodable(path, "path")
        tags = _row_tags(raw)
        check_encodable(tags, "tags")
        file = raw.get("file")
        file = None if _missing(file) else file
        digest = None
        if file is not None:
            if not isinstance(file, str):
                raise ValueError(f"file must be a local file path, not {type(file).__name__}")
            digest = _file_digest(file)
            _check_body_size(path, tags, file)
        elif region is not None and not obs_url_re(region).fullmatch(path):
            raise ValueError(f"path must be {OBS_URL_FORM.replace('{region}', region)} when no file is given")
        return ManifestRow(row, path, tags, file, fingerprint(tags, digest))
    except Exception as error:  # never raises: any odd value fails its row only
        reason = invalid_reason(error)
        return ManifestRow(row, ledger_key(path), {}, None, fingerprint({"invalid": reason}, None), reason)


def _row_tags(raw: Mapping[str, Any]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    value = raw.get("tags")
    if not _missing(value):
        value = map_pairs(_plain(value), "tags")
        if isinstance(value, list | tuple) and not value:
            value = {}  # an empty map
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(
                    "tags must be a JSON object of tag name -> string or list of strings"
                ) from None
        if not isinstance(value, Mapping):
            raise ValueError("tags must be a JSON object of tag name -> string or list of strings")
        for key, tag in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"tag names must be non-empty strings, not {key!r}")
            if tag is None:
                continue
            tags[key] = _tag_value(key, tag)
    for column, tag in raw.items():
        if isinstance(column, str) and column.startswith(TAG_PREFIX) and not _missing(tag):
            key = column[len(TAG_PREFIX) :]
            tags[key] = _tag_value(key, tag)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags per image, not {len(tags)}")
    return tags


def base64_size(size: int) -> int:
    """Length of the base64 text of ``size`` bytes."""
    return 4 * math.ceil(size / 3)


def _check_body_size(path: str, tags: Mapping[str, Any], file: str) -> None:
    """Refuse a row whose add request would exceed :data:`MAX_BODY_BYTES`: a long path or many tags
    beside a file near :data:`MAX_FILE_BYTES` would be refused by the gateway on every run."""
    # ensure_ascii: \u escapes are the largest a client may send; "file" stands for the image's field.
    envelope = len(json.dumps({"path": path, "tags": tags, "file": ""}, ensure_ascii=True))
    body = base64_size(os.path.getsize(file)) + envelope
    if body > MAX_BODY_BYTES:
        raise ValueError(
            f"file {file!r} with this row's path and tags makes a request body of {body} bytes (base64), "
            f"more than the {MAX_BODY_BYTES} the API accepts"
        )


def _file_digest(file: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    try:
        size = os.path.getsize(file)
    except OSError as error:
        raise ValueError(f"file {file!r} cannot be read ({type(error).__name__})") from None
    if size == 0:
        raise ValueError(f"file {file!r} is empty")
    if size > max_bytes:
        raise ValueError(f"file {file!r} is {size} bytes, more than the {max_bytes} allowed")
    digest = hashlib.sha256()
    try:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise ValueError(f"file {file!r} cannot be read ({type(error).__name__})") from None
    return digest.hexdigest()


def file_base64(file: str) -> str:
    with open(file, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


# --- sources ----------------------------------------------------------------------------------------


def validate_source(manifest: Any, manifest_sql: Any, manifest_conn_id: Any) -> None:
    """Exactly one source: ``manifest`` (list of dicts, path or URL) or ``manifest_sql`` + conn id."""
    if manifest_sql is not None:
        if manifest is not None:
            raise ImageSearchValidationError(
                "manifest/manifest_sql", "one of manifest or manifest_sql, not both", "both given"
            )
        if not isinstance(manifest_sql, str) or not manifest_sql.strip():
            raise ImageSearchValidationError("manifest_sql", "a non-empty SQL query", manifest_sql)
        if not isinstance(manifest_conn_id, str) or not manifest_conn_id:
            raise ImageSearchValidationError(
                "manifest_conn_id", "the id of the SQL connection manifest_sql runs on", manifest_conn_id
            )
        return
    if manifest is None:
        raise ImageSearchValidationError(
            "manifest", "a list of dicts, a CSV/JSON-lines/Parquet path or URL, or use manifest_sql", None
        )
    if manifest_conn_id and not is_object_storage_url(manifest):
        raise ImageSearchValidationError(
            "manifest_conn_id",
            "the connection of manifest_sql, or of an object-storage manifest URL such as s3://bucket/key.csv "
            "(a presigned http(s) URL, a local file or a list needs none)",
            manifest_conn_id,
        )
    if isinstance(manifest, str | os.PathLike) or hasattr(manifest, "open"):
        if isinstance(manifest, str) and not manifest.strip():
            raise ImageSearchValidationError("manifest", "a non-empty path or URL", manifest)
        manifest_format(manifest)
        if _is_http(manifest):
            _refuse_user_info(url_text(manifest))
        return
    if not isinstance(manifest, Sequence):
        raise ImageSearchValidationError(
            "manifest", "a list of dicts, a CSV/JSON-lines/Parquet path or URL", type(manifest).__name__
        )


def shown_url(manifest: Any) -> Any:
    """What an error may show of a manifest: a URL without its query (a presigned URL's signature,
    credential and token are there) and user info; anything else as it is."""
    text = url_text(manifest)
    if "://" not in text:
        return manifest
    scheme, _, rest = text.partition("://")
    # Everything up to the last @ goes: a password may hold ? / or #, and a query may hold an @ before
    # its signature; after an @, cut at the first query-like character too. Less shown beats a leak.
    userinfo = "@" in rest
    if userinfo:
        rest = rest.rpartition("@")[2]
    rest = re.split(r"[?#&=;]" if userinfo else r"[?#]", rest, maxsplit=1)[0]
    hidden = "?<query hidden>" if "?" in text else ""
    return f"{scheme}://{'***@' if userinfo else ''}{rest}{hidden}"


def manifest_format(manifest: Any) -> str:
    name = url_text(manifest).lower().split("?", 1)[0]
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise ImageSearchValidationError(
        "manifest",
        f"a file name ending in one of {', '.join(_SUFFIXES)} (CSV, JSON lines, Parquet)",
        shown_url(manifest),
    )


def read_chunks(
    manifest: Any = None,
    *,
    manifest_sql: str | None = None,
    manifest_conn_id: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    position: ReadPosition | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The manifest's raw rows, ``chunk_rows`` at a time (see the module doc); ``position`` (if given)
    follows how far the reading got."""
    validate_source(manifest, manifest_sql, manifest_conn_id)
    position = position if position is not None else ReadPosition()
    if manifest_sql is not None:
        assert manifest_conn_id is not None
        yield from _sql_chunks(manifest_sql, manifest_conn_id, chunk_rows)
    elif isinstance(manifest, str | os.PathLike) or hasattr(manifest, "open"):
        yield from _file_chunks(manifest, chunk_rows, position, manifest_conn_id)
    else:
        yield from _list_chunks(manifest, chunk_rows, position)


def _list_chunks(
    rows: Iterable[Any], chunk_rows: int, position: ReadPosition
) -> Iterator[list[dict[str, Any]]]:
    if isinstance(rows, Sequence):
        position.total = len(rows)
    chunk: list[dict[str, Any]] = []
    for row in rows:
        position.done += 1
        # A non-mapping becomes a row without a path: invalid, reported with its number.
        chunk.append(dict(row) if isinstance(row, Mapping) else {"path": None})
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def is_object_storage_url(manifest: Any) -> bool:
    """Whether ``manifest`` is a URL Airflow's ``ObjectStoragePath`` opens (``s3://``, ``gs://``, ...):
    not http(s), which is downloaded as it is (a presigned URL), and not ``file://``."""
    if not isinstance(manifest, str) or "://" not in manifest:
        return False
    scheme = manifest.split("://", 1)[0].lower()
    return scheme not in ("http", "https", "file")


def _open(manifest: Any, conn_id: str | None = None) -> Any:
    """A binary file object: a local path, an http(s) URL, or an ObjectStoragePath / other URL
    (``airflow.sdk.ObjectStoragePath``, with ``conn_id``: e.g. an ``aws`` connection for ``s3://``)."""
    if _is_http(manifest):
        return _download(url_text(manifest))
    if is_object_storage_url(manifest):
        from airflow.sdk import ObjectStoragePath  # loads fsspec: only when a manifest is read
        from airflow.sdk.io.fs import has_fs

        url = manifest
        mask_url_secrets(url)
        scheme = url.split("://", 1)[0].lower()
        if not has_fs(scheme):
            # Not the manifest's fault: Airflow loaded no filesystem for the scheme (the provider that
            # supplies it is not installed, or failed to import; Airflow logs why).
            raise ImageSearchConfigError(
                f"Cannot read the manifest {shown_url(url)!r}: {_missing_filesystem(scheme)}"
            )
        if conn_id:
            _check_store_connection(conn_id, scheme)
        try:
            path = ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)
            return _StoreFile(path.open("rb"), url)
        except ImageSearchValidationError:
            raise
        except Exception as error:
            # A missing object, a denied bucket, a store that is down (botocore's EndpointConnectionError),
            # no filesystem for the scheme (the [s3] extra).
            raise _store_failure(error, "opening", url) from None
    elif isinstance(manifest, str) and manifest.startswith("file://"):
        manifest = manifest[len("file://") :]
    if hasattr(manifest, "open"):
        if hasattr(manifest, "protocol"):  # an ObjectStoragePath: its text may hold user info
            mask_url_secrets(str(manifest))
        return manifest.open("rb")
    return open(manifest, "rb")


def _store_failure(error: Exception, doing: str, url: str) -> ImageSearchValidationError:
    """A store's failure (whatever its library raises) as a refusal naming ``manifest``."""
    problem = f"an object that can be read, but {doing} it failed: {type(error).__name__}"
    if not isinstance(error, OSError):  # an OSError's text may quote the whole path: its kind only
        problem += f" ({str(error)[:200]})"
    return ImageSearchValidationError("manifest", problem, shown_url(url))


#: Read methods a store's file may or may not have (``io.BufferedReader``'s): guarded where it has them,
#: absent where it does not, so a reader that probes for one (``TextIOWrapper`` and ``read1``) still can.
_OPTIONAL_READS = frozenset({"read1", "readall", "readinto1", "peek", "readlines"})


class _StoreFile:
    """An object store's file, whose read errors (a connection dropped mid-read, the store gone) name
    ``manifest`` like every other bad manifest instead of surfacing as the store library's own."""

    def __init__(self, handle: Any, url: str) -> None:
        self._handle = handle
        self._url = url

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._handle, name)  # an absent one stays an AttributeError (hasattr probes)
        if name in _OPTIONAL_READS and callable(attribute):
            return functools.partial(self._guarded, name)
        return attribute

    def _guarded(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._handle, method)(*args)
        except Exception as error:
            raise _store_failure(error, "reading", self._url) from None

    def read(self, *args: Any) -> Any:
        return self._guarded("read", *args)

    def readinto(self, *args: Any) -> Any:
        return self._guarded("readinto", *args)

    def readline(self, *args: Any) -> Any:
        return self._guarded("readline", *args)

    def seek(self, *args: Any) -> Any:
        return self._guarded("seek", *args)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __enter__(self) -> _StoreFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


#: The connection type an object-storage scheme needs (Airflow's filesystem for the scheme reads it).
STORE_CONN_TYPES = {"s3": "aws", "s3a": "aws"}


def _check_store_connection(conn_id: str, scheme: str) -> None:
    """Refuse a ``manifest_conn_id`` that names no connection, or one of the wrong type, before opening.

    Airflow's filesystem for ``s3://`` quietly falls back to the worker's default credentials and
    endpoint when its connection is missing (or is not an ``aws`` one): a misspelt id would read from
    another store, or fail much later with an error naming neither field.
    """
    from airflow.sdk import BaseHook

    expected = STORE_CONN_TYPES.get(scheme)
    form = f"the id of an existing {expected + ' ' if expected else ''}connection for {scheme}:// manifests"
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as error:
        if type(error).__name__ != "AirflowNotFoundException":
            raise
        raise ImageSearchValidationError(
            "manifest_conn_id", form + " (no connection has this id)", conn_id
        ) from None
    if expected and connection.conn_type != expected:
        raise ImageSearchValidationError(
            "manifest_conn_id", f"{form} (this one is of type {connection.conn_type!r})", conn_id
        )


def _missing_filesystem(scheme: str) -> str:
    """What to install when Airflow has no filesystem for ``scheme``."""
    if scheme in ("s3", "s3a"):
        return (
            f"the s3 support is missing or failed to import (Airflow has no filesystem for {scheme}://). "
            "Install the provider's [s3] extra: pip install 'airflow-provider-imagesearch[s3]' "
            f"({_extra_requirement('s3')}); if it is installed, Airflow's log says why apache-airflow-providers-amazon "
            "failed to import (e.g. a release too old for this Airflow)"
        )
    return (
        f"Airflow has no filesystem for {scheme}://: the Airflow provider that supplies it is not "
        "installed or failed to import (Airflow's log says why)"
    )


def _extra_requirement(extra: str) -> str:
    """The requirement an extra of this package declares (``apache-airflow-providers-amazon[s3fs]>=...``)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        declared = requires("airflow-provider-imagesearch") or []
    except PackageNotFoundError:  # pragma: no cover (run from a checkout that was never installed)
        declared = []
    found = [r.split(";")[0].strip() for r in declared if f'extra == "{extra}"' in r]
    return ", ".join(found) or f"the [{extra}] extra"


def _is_http(manifest: Any) -> bool:
    return url_text(manifest).lower().startswith(("http://", "https://"))


def url_text(manifest: Any) -> str:
    """A manifest's path or URL as text. An http(s) ``ObjectStoragePath`` by its ``path``, which is the
    whole URL, query included: Airflow 3.1's (universal_pathlib 0.2) prints one with its scheme twice
    (``https://https://host/m.csv``), which no download can reach; and a path rebuilt from that text (by
    XCom, or from the serialized DAG a task runs) holds the scheme twice in its ``path`` too. The URL is
    what follows the last of the repeated schemes."""
    if not isinstance(manifest, str | bytes) and str(getattr(manifest, "protocol", "")).lower() in (
        "http",
        "https",
    ):
        return _REPEATED_SCHEME.sub("", str(manifest.path))
    return str(manifest)


_REPEATED_SCHEME = re.compile(r"^(?:https?://)+(?=https?://)", re.IGNORECASE)


def _download(url: str) -> IO[bytes]:
    """The body of an http(s) URL (e.g. a presigned URL of an OBS or S3 object), in a temporary file.

    Airflow registers no filesystem for http(s) (``ObjectStoragePath("https://...").open()`` raises);
    ``s3://`` manifests go through ``ObjectStoragePath`` and ``manifest_conn_id`` instead (the ``[s3]``
    extra). A presigned URL is signed for GET: so one GET, streamed to an unnamed file on disk, so a large
    manifest never sits in memory and Parquet can seek. urllib, not requests: urllib3 logs each URL,
    query (signature) included, at DEBUG. Errors name ``manifest`` and show the URL without its query.
    """
    import http.client
    import tempfile
    import urllib.error
    import urllib.request

    mask_url_secrets(url)
    _refuse_user_info(url)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller reads and closes it)
    problem = None
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_SECONDS) as response:
            shutil.copyfileobj(response, spool, 1 << 20)
    except urllib.error.HTTPError as error:
        problem = (
            f"a URL its store answers with the file, but {shown_url(url).split('?')[0]} answered "
            f"HTTP {error.code}{_store_error(error)} (a presigned URL must be unexpired and signed for GET)"
        )
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # Only the kind of failure: some of these messages quote the URL.
        reason = getattr(error, "reason", error)
        detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else None
        problem = f"a URL that can be read, but reading {shown_url(url).split('?')[0]} failed: " + (
            f"{type(reason).__name__}" + (f" ({detail})" if detail else "")
        )
    except BaseException:
        spool.close()
        raise
    if problem is not None:
        spool.close()
        # Raised outside the except blocks: the urllib error (which holds the full URL) is not chained.
        raise ImageSearchValidationError("manifest", problem, shown_url(url))
    spool.seek(0)
    return spool


_STORE_ERROR_TEXT = re.compile(r"[\w .,'()-]{1,200}")


def _store_error(error: Any) -> str:
    """``: Code: Message`` of an S3/OBS XML error body, when both are plain text (the body of a
    SignatureDoesNotMatch also quotes the signature and string to sign: never shown)."""
    try:
        body = error.read(4096).decode("utf-8", "replace")
    except Exception:
        return ""
    found = [re.search(rf"<{tag}>([^<]*)</{tag}>", body) for tag in ("Code", "Message")]
    parts = [m.group(1).strip() for m in found if m and _STORE_ERROR_TEXT.fullmatch(m.group(1).strip())]
    return f": {': '.join(parts)}" if parts else ""


def _refuse_user_info(url: str) -> None:
    """An http(s) manifest is downloaded as it is, with no credentials: user info in its URL would be
    taken for part of the host name."""
    if _user_info_readings(url):
        raise ImageSearchValidationError(
            "manifest",
            "an http(s) URL without user:password@ (the download sends no credentials: use a presigned URL,"
            " or an object-storage URL with manifest_conn_id)",
            shown_url(url),
        )


def _user_info_readings(url: str) -> list[tuple[str, str]]:
    """``(user, password)`` of each way to read a URL's user info: it ends at one of the @s, as a password
    may hold / ? # and @ (where urlsplit would end it early) and a query may hold an @ after it. Only
    readings whose user is a name (no / ? #: else the text before the @ is a path, with a timestamp's
    colons, say)."""
    _, separator, rest = url.partition("://")
    readings = []
    at = rest.find("@") if separator else -1
    while at != -1:
        user, _, password = rest[:at].partition(":")
        if user and not any(mark in user for mark in "/?#"):
            readings.append((user, password))
        at = rest.find("@", at + 1)
    return readings


def mask_url_secrets(url: str) -> None:
    """Register a URL's secrets with Airflow's secrets masker, so no log line of this process (and no
    Rendered Template view serialized after this) shows them, whoever logs the URL: the password of its
    ``user:password@`` (of any scheme: ``s3://KEY:SECRET@bucket/...`` too) and, in its query, a presigned
    URL's signature, credential and token."""
    from urllib.parse import unquote, urlsplit

    secrets = []
    for _, password in _user_info_readings(url):
        # Under 5 characters Airflow's masker would skip it anyway (and warn, for each reading).
        if len(password) >= 5:
            secrets += [password, unquote(password)]
    query = urlsplit(url).query
    found_in_query = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        name = unquote(name).lower()
        if len(value) >= 8 and (
            any(word in name for word in _SECRET_QUERY_WORDS) or name in _SECRET_QUERY_NAMES
        ):
            found_in_query += [value, unquote(value)]
    if found_in_query:
        secrets += [query, *found_in_query]
    if not secrets:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover
        return
    for secret in set(secrets):
        mask_secret(secret)


def check_utf8(manifest: Any, head: bytes) -> None:
    """Refuse a manifest whose first bytes are a UTF-16 or UTF-32 byte order mark, naming its encoding:
    read as UTF-8, each of its rows would fail on its own with a JSON or CSV syntax error instead."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise ImageSearchValidationError(
                "manifest",
                f"must be UTF-8, not {encoding} (it starts with a {encoding} byte order mark; PowerShell 5 "
                "writes UTF-16 by default: save it with Out-File -Encoding utf8, or Export-Csv -Encoding "
                "UTF8)",
                shown_url(manifest),
            )


def _head(handle: Any) -> bytes:
    """The first 4 bytes of a seekable file, the position kept; empty when it cannot be read so."""
    try:
        if not handle.seekable():  # a read could not be undone
            return b""
        position = handle.tell()
        head = handle.read(4)
        handle.seek(position)
        return bytes(head)
    except (OSError, ValueError, AttributeError, TypeError):
        return b""


def _file_chunks(
    manifest: Any, chunk_rows: int, position: ReadPosition, conn_id: str | None = None
) -> Iterator[list[dict[str, Any]]]:
    kind = manifest_format(manifest)
    name = url_text(manifest).lower().split("?", 1)[0]
    compression = next((s[1:] for s in _COMPRESSION if name.endswith(s)), None)
    compression = {"gz": "gzip", "zst": "zstd"}.get(compression or "", compression)
    with _open(manifest, conn_id) as handle:
        if kind == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(handle)
            position.total = parquet.metadata.num_rows
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                position.done += batch.num_rows
                yield batch.to_pylist()
            return
        if _empty(handle):
            return
        position.total = _size(handle)
        if kind == "jsonl":
            yield from _json_lines_chunks(handle, compression, chunk_rows, position, manifest)
            return
        if compression is None:
            check_utf8(manifest, _head(handle))
        import pandas as pd

        reader = pd.read_csv(
            handle,
            chunksize=chunk_rows,
            dtype=str,
            keep_default_na=False,
            sep="\t" if ".tsv" in name else ",",
            compression=compression,
            encoding="utf-8",
        )
        with reader:
            for frame in reader:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    position.done = handle.tell()  # bytes consumed (pandas reads ahead: roughly)
                yield frame.to_dict("records")


def _json_lines_chunks(
    handle: IO[bytes], compression: str | None, chunk_rows: int, position: ReadPosition, manifest: Any = None
) -> Iterator[list[dict[str, Any]]]:
    """A JSON-lines file's records, ``chunk_rows`` at a time, read with Python's ``json``.

    Not pandas' reader: its parser stops the whole file at one integer beyond 64 bits ("Value is too
    big!") and at a byte order mark (Windows tools write UTF-8 with one), naming neither row nor field.
    Here a UTF-8 BOM is dropped (a UTF-16 or UTF-32 one fails the read at once, :func:`check_utf8`),
    integers of up to 4,300 digits keep their value (the row check judges them; Python's ``json``
    refuses a longer one, ``sys.get_int_max_str_digits``, and the line with it), bytes that are not UTF-8
    become lone surrogates (the row check refuses them), and a line that is not a JSON object is an
    invalid row of its own (:data:`READ_ERROR`), without a key, so it refuses ``prune``: one bad line
    never stops the import. Blank lines are
    skipped; rows are numbered by the records before them. Decompression is fsspec's (which Airflow's
    ``ObjectStoragePath`` already uses).
    """
    import io

    source: IO[bytes] = handle
    if compression is not None:
        from fsspec.compression import compr

        if compression not in compr:
            raise ImageSearchValidationError(
                "manifest",
                f"a compression this worker can read ({', '.join(sorted(k for k in compr if k))}); "
                f"{compression} needs its package installed",
                compression,
            )
        source = compr[compression](handle, mode="rb")
    text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline=None)
    chunk: list[dict[str, Any]] = []
    first = True
    for line in text:
        if first:
            # The decoded first bytes (undecodable ones kept as surrogates), compressed or not.
            check_utf8(manifest, line[:4].encode("utf-8", "surrogateescape"))
            first = False
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            record = {READ_ERROR: f"not a JSON object ({type(error).__name__}: {str(error)[:200]})"}
        except RecursionError:
            record = {READ_ERROR: "not a JSON object (nested too deeply)"}
        if not isinstance(record, dict):
            record = {READ_ERROR: f"a JSON {type(record).__name__}, not an object of column -> value"}
        chunk.append(record)
        if len(chunk) >= chunk_rows:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                position.done = handle.tell()  # bytes consumed (read ahead: roughly)
            yield chunk
            chunk = []
    if chunk:
        position.done = position.total or position.done
        yield chunk


def _size(handle: Any) -> int | None:
    """The size in bytes of an open file (local, spooled download, or object-storage file), if known."""
    for size in (
        lambda: os.fstat(handle.fileno()).st_size,
        lambda: handle.size,
        lambda: handle.details["size"],
    ):
        try:
            value = size()
        except Exception:
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None


def _empty(handle: Any) -> bool:
    """Whether a file is empty (pandas refuses a CSV without even a header line)."""
    try:
        position = handle.tell()
        empty = not handle.read(1)
        handle.seek(position)
        return empty
    except (OSError, ValueError, AttributeError):
        return False


def _sql_chunks(sql: str, conn_id: str, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    import sqlalchemy as sa

    from airflow_provider_imagesearch.archive import sql_engine

    engine = sql_engine(conn_id)
    try:
        # stream_results: a server-side cursor where the driver has one (PostgreSQL), so rows arrive
        # chunk by chunk instead of all at once.
        with engine.connect().execution_options(stream_results=True) as connection:
            result = connection.execute(sa.text(sql))
            columns = list(result.keys())
            while rows := result.fetchmany(chunk_rows):
                yield [dict(zip(columns, row, strict=True)) for row in rows]
    finally:
        engine.dispose()
