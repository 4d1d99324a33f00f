"""What the page shows of a value: times, statuses, tags, and text with every URL's secrets cut out.

The templates escape whatever they print (Jinja autoescape); this module decides *what* is printed. A
ledger path or an error message may hold a presigned URL (its query string carries the signature) or a
URL with ``user:password@``: :func:`redact` removes both before a value reaches the page or the CSV.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow_provider_imagesearch.models import READY_STATUSES, TERMINAL_FAILURE_STATUSES

#: Statuses an instance passes through on its own (creation, deletion): not failures.
TRANSITIONAL = frozenset({"CREATION", "DELETING"})
_FAILURES = frozenset(status.value for status in TERMINAL_FAILURE_STATUSES) - TRANSITIONAL
_READY = frozenset(status.value for status in READY_STATUSES)
#: A URL inside free text: a scheme, ``://`` (``:\/\/`` inside JSON text, as an error body may quote
#: it), then everything up to white space or a quote.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,15}(:(?:\\?/){2})[^\s\"'<>`]+")
#: A credential's ``name=value`` outside a URL the pattern above finds (a bare query string, a
#: percent-encoded URL, a header quoted in an error): its value is replaced.
_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])([\w-]*(?:signature|token|credential|password|secret)|sig|accesskeyid|policy)"
    r"(=|%3D)(?:[^&\s\"'<>`%]|%(?!26)[0-9A-Fa-f]{2})+"
)
#: Spreadsheet formula starters: a CSV cell that begins with one is prefixed with ``'``.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def status_tone(status: str) -> str:
    """``ok`` (ready), ``bad`` (needs a person), ``busy`` (creating, deleting) or ``unknown``."""
    if status in _READY:
        return "ok"
    if status in _FAILURES:
        return "bad"
    if status in TRANSITIONAL:
        return "busy"
    return "unknown"


def format_time(moment: datetime | None, *, tick: timedelta | None = None) -> str:
    """``2026-01-06 10:00:05 UTC``; ``-`` for none. With ``tick`` (an axis span), a short label fit
    for that span: ``01-06 10:00:05`` within two days, ``01-06 10:00`` beyond."""
    if moment is None:
        return "-"
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if tick is not None:
        return moment.strftime("%m-%d %H:%M:%S" if tick < timedelta(days=2) else "%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def expiry(expires_at: datetime | None, never_expires: bool, now: datetime) -> tuple[str, str]:
    """The expiry as text and a tone: ``bad`` once expired, ``busy`` within 30 days."""
    if never_expires:
        return "never", "ok"
    if expires_at is None:
        return "-", "unknown"
    text = expires_at.astimezone(UTC).strftime("%Y-%m-%d")
    if expires_at <= now:
        return f"{text} (expired)", "bad"
    if expires_at - now <= timedelta(days=30):
        return text, "busy"
    return text, "ok"


def tags(raw: str | None) -> list[str]:
    """The archive's ``tags`` column (a JSON list) as strings; text that is not one is shown as is."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [redact(raw)]
    if isinstance(value, list):
        return [redact(str(item)) for item in value]
    return [redact(str(value))]


def redact(text: str | None) -> str:
    """``text`` with each URL's ``user:password@``, query string and fragment replaced by ``***``, and
    the value of each credential-named parameter (``Signature=``, ``X-Amz-Credential=``...) elsewhere."""
    if not text:
        return ""
    text = _URL.sub(lambda match: _redact_url(match.group(0), match.group(1)), text)
    return _SECRET_PARAM.sub(r"\1\2***", text)


def _redact_url(url: str, separator: str) -> str:
    scheme, _, rest = url.partition(separator)
    authority_end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            authority_end = min(authority_end, found)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    cut = len(tail)
    for mark in "?#":
        found = tail.find(mark)
        if found != -1:
            cut = min(cut, found)
    hidden = "?***" if cut < len(tail) else ""
    return f"{scheme}{separator}{authority}{tail[:cut]}{hidden}"


def csv_cell(value: Any) -> str:
    """A value for the CSV download: redacted, and never read as a formula by a spreadsheet."""
    text = "" if value is None else redact(str(value))
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def dag_run_href(dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run, relative to the page (``../`` is the UI's base URL)."""
    return f"../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


@dataclass(frozen=True)
class ConsoleLinks:
    """Console URLs as the operators' extra link builds them, from the ImageSearch connection.

    :param settings: the connection's settings (``None``: no links).
    :param notice: why there are no links, for the page.
    """

    settings: Any = None
    notice: str = ""

    def url(self, name: str, project_id: str | None = None) -> str:
        if self.settings is None:
            return ""
        return str(self.settings.console_link(name, project_id))


def console_links(conn_id: str) -> ConsoleLinks:
    """The console links of ``conn_id``'s ``console_url``/``region``/``project_id``; no request is sent."""
    import logging

    if not conn_id:
        return ConsoleLinks()  # links turned off on purpose: nothing to tell
    from airflow.sdk import BaseHook

    from airflow_provider_imagesearch.settings import settings_from_connection

    try:
        connection = BaseHook.get_connection(conn_id)
        settings = settings_from_connection(
            host=connection.host,
            port=connection.port,
            login=connection.login,
            password=connection.password,
            extras=_extras(connection),
        )
    except Exception as error:
        # The details (which field is wrong) are for the log: the page is not the connection form.
        logging.getLogger(__name__).warning(
            "ImageSearch page: no console links from connection %r: %s", conn_id, type(error).__name__
        )
        return ConsoleLinks(notice=f"No console links: the connection {conn_id!r} could not be read.")
    return ConsoleLinks(settings=settings)


def _extras(connection: Any) -> Mapping[str, Any]:
    extras = connection.extra_dejson
    return extras if isinstance(extras, Mapping) else {}
