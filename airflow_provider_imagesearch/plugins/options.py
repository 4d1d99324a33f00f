"""The ``[imagesearch]`` options of the ImageSearch page, declared once for Airflow and read once per request.

``get_provider_info()`` publishes :func:`config_section` (so ``airflow config list`` shows the options with
their defaults) and the page reads them with :meth:`PageOptions.from_config`. The module imports nothing
but the standard library: provider discovery imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECTION = "imagesearch"


@dataclass(frozen=True)
class OptionSpec:
    """One option: its type as Airflow's config schema names it, default, bounds and description."""

    kind: str
    default: str
    description: str
    minimum: int | None = None
    maximum: int | None = None


OPTIONS: dict[str, OptionSpec] = {
    "archive_conn_id": OptionSpec(
        "string",
        "imagesearch_archive_db",
        "SQL connection (any common-sql one: SQLite, PostgreSQL, ...) holding the instance archive that "
        "the example DAG imagesearch_instance_archive writes. The page's Fleet and History read it.",
    ),
    "archive_table": OptionSpec(
        "string", "imagesearch_instance_archive", "The archive table, ``[schema.]table``."
    ),
    "ledger_conn_id": OptionSpec(
        "string",
        "imagesearch_archive_db",
        "SQL connection holding the import ledger (the ``ledger_conn_id`` of the import operators). "
        "The page's Libraries read it.",
    ),
    "ledger_table": OptionSpec(
        "string", "imagesearch_import_ledger", "The ledger table, ``[schema.]table``."
    ),
    "imagesearch_conn_id": OptionSpec(
        "string",
        "imagesearch_default",
        "ImageSearch connection whose ``console_url``, ``region`` and ``project_id`` extras build the "
        "console links, as the operators' extra link does. The page never calls ImageSearch with it. "
        "Empty: no console links.",
    ),
    "page_size": OptionSpec("integer", "50", "Rows (instances, libraries, problem rows) per page.", 1, 500),
    "history_days": OptionSpec(
        "integer",
        "30",
        "Default span of the History chart, in days back from the newest snapshot shown.",
        1,
        3660,
    ),
}


def config_section() -> dict[str, Any]:
    """The ``config`` entry of ``get_provider_info()``."""
    return {
        SECTION: {
            "description": "The ImageSearch page of the Airflow UI (Fleet, History, Libraries).\n",
            "options": {
                name: {
                    "description": spec.description,
                    "version_added": "0.1.0",
                    "type": spec.kind,
                    "example": None,
                    "default": spec.default,
                }
                for name, spec in OPTIONS.items()
            },
        }
    }


class OptionError(ValueError):
    """An ``[imagesearch]`` option has a value the page cannot use; the message names it and the form."""


@dataclass(frozen=True)
class PageOptions:
    """The page's settings.

    :param archive_conn_id: SQL connection of the instance archive.
    :param archive_table: the archive table.
    :param ledger_conn_id: SQL connection of the import ledger.
    :param ledger_table: the ledger table.
    :param imagesearch_conn_id: ImageSearch connection for console links ("" for none).
    :param page_size: rows per page.
    :param history_days: default span of the History chart.
    """

    archive_conn_id: str = OPTIONS["archive_conn_id"].default
    archive_table: str = OPTIONS["archive_table"].default
    ledger_conn_id: str = OPTIONS["ledger_conn_id"].default
    ledger_table: str = OPTIONS["ledger_table"].default
    imagesearch_conn_id: str = OPTIONS["imagesearch_conn_id"].default
    page_size: int = 50
    history_days: int = 30

    @classmethod
    def from_config(cls, conf: Any) -> PageOptions:
        """Read and check every option from Airflow's configuration (``conf``); the defaults fill gaps."""
        raw = {name: conf.get(SECTION, name, fallback=spec.default) for name, spec in OPTIONS.items()}
        return cls.from_strings(raw)

    @classmethod
    def from_strings(cls, raw: dict[str, str | None]) -> PageOptions:
        from airflow_provider_imagesearch.archive import TABLE_NAME_FORM, TABLE_NAME_RE

        values: dict[str, Any] = {}
        for name, spec in OPTIONS.items():
            value = raw.get(name)
            text = (spec.default if value is None else str(value)).strip()
            where = f"[{SECTION}] {name}"
            if spec.kind == "integer":
                low, high = spec.minimum or 0, spec.maximum or 0
                number = int(text) if text.lstrip("-").isdigit() else None
                if number is None or not low <= number <= high:
                    raise OptionError(f"{where} must be an integer from {low} to {high}, got {text!r}")
                values[name] = number
            elif spec.kind == "boolean":
                if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise OptionError(f"{where} must be True or False, got {text!r}")
                values[name] = text.lower() in ("true", "1", "yes", "on")
            elif name.endswith("_table"):
                if not TABLE_NAME_RE.fullmatch(text):
                    raise OptionError(f"{where} must be {TABLE_NAME_FORM}, got {text[:80]!r}")
                values[name] = text
            else:
                if name != "imagesearch_conn_id" and not text:
                    raise OptionError(f"{where} must name an Airflow connection, got an empty value")
                values[name] = text
        return cls(**values)
