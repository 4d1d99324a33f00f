"""The ImageSearch page: a FastAPI app the api-server mounts at ``/imagesearch`` (see ``plugin.py``).

Every route depends on :func:`require_reader`: an Airflow user, authenticated by the auth manager the
api-server runs (the UI's session cookie or a bearer token, as for Airflow's own API), allowed to read
DAG runs. Airflow does not protect plugin apps itself: a route without that dependency would be public.

Pages are HTML rendered on the server (Jinja, autoescaped) with no script at all, served under a
Content-Security-Policy that allows none; the history chart is inline SVG. Nothing on a page load calls
ImageSearch: the data comes from the archive and the ledger tables (``queries.py``), and the console
links from the ImageSearch connection's extras.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from airflow_provider_imagesearch.plugins import queries, render, storage
from airflow_provider_imagesearch.plugins.chart import build_chart
from airflow_provider_imagesearch.plugins.options import OptionError, PageOptions
from airflow_provider_imagesearch.version_compat import conf

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: No script, no remote anything: styles inline, images only inline (the SVG chart is part of the page).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NAME_FILTER_MAX = 64
STATUS_MAX = 64


def require_reader(user: Annotated[Any, Depends(get_user)]) -> Any:
    """The request's Airflow user, if the auth manager lets them read DAG runs; else 403.

    ``get_user`` answers 401 without a credential (and for an expired one) and 403 for a forged one.
    Reading DAG runs of every DAG is asked for because the tables mix the runs of any DAG that archives
    or imports (the rows are what those runs' tasks returned as XCom and logged).
    """
    allowed = get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN, user=user)
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "The ImageSearch page needs permission to read DAG runs"
        )
    return user


def _environment() -> Any:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        format_time=render.format_time,
        status_tone=render.status_tone,
        redact=render.redact,
        run_href=render.dag_run_href,
    )
    return environment


class Page:
    """What every view needs: the options, the templates, the console links, the DAG-run lookup."""

    def __init__(self) -> None:
        self.templates = _environment()

    def options(self) -> PageOptions:
        try:
            return PageOptions.from_config(conf)
        except OptionError as error:
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from None

    def html(self, template: str, **context: Any) -> HTMLResponse:
        context.setdefault("notices", [])
        context.setdefault("generated", render.format_time(datetime.now(UTC)))
        body = self.templates.get_template(template).render(**context)
        return HTMLResponse(body, headers=SECURITY_HEADERS)


def _engine(conn_id: str, field: str, notices: list[str]) -> Any:
    """The connection's engine, or None with a notice saying why (never the connection's details)."""
    try:
        return storage.ENGINES.get(conn_id, field)
    except Exception as error:
        log.warning("ImageSearch page: connection %r unusable: %s", conn_id, error)
        notices.append(f"The connection {conn_id!r} ([imagesearch] {field}) could not be used.")
        return None


def _read(what: str, notices: list[str], action: Callable[[], Any]) -> Any:
    """``action()``, or None with a notice when the table is missing or the database refuses."""
    try:
        return action()
    except queries.TableMissing as missing:
        notices.append(f"No {what} yet: the table {missing.args[0]} does not exist on this connection.")
    except Exception as error:
        log.exception("ImageSearch page: reading the %s failed", what)
        notices.append(f"The {what} could not be read ({type(error).__name__}); the API server log has why.")
    return None


def _runs(run_ids: list[str], notices: list[str]) -> dict[str, list[str]]:
    try:
        return queries.dag_ids_of_runs(run_ids)
    except Exception:
        log.exception("ImageSearch page: looking up DAG runs failed")
        notices.append("The DAG runs could not be looked up: run ids are shown without links.")
        return {}


def _offset(page: int, size: int) -> int:
    return (page - 1) * size


def _fleet_page(
    options: PageOptions, status_filter: str, name_filter: str, page_number: int, notices: list[str]
) -> tuple[Any, Any]:
    """The archive's engine (or None) and one page of the fleet's newest snapshots (or None), as the
    Fleet and History tabs both list them."""
    engine = _engine(options.archive_conn_id, "archive_conn_id", notices)
    if engine is None:
        return None, None
    result = _read(
        "archive",
        notices,
        lambda: queries.fleet(
            engine,
            options.archive_table,
            status=status_filter or None,
            name_contains=name_filter or None,
            offset=_offset(page_number, options.page_size),
            limit=options.page_size,
        ),
    )
    return engine, result


def create_app() -> FastAPI:
    """The page's app; ``plugin.py`` builds it on its first request."""
    app = FastAPI(
        title="ImageSearch",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_reader)],
    )
    page = Page()

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("fleet", status_code=status.HTTP_307_TEMPORARY_REDIRECT)

    @app.get("/fleet", response_class=HTMLResponse)
    def fleet_view(
        status_filter: Annotated[str, Query(alias="status", max_length=STATUS_MAX)] = "",
        q: Annotated[str, Query(max_length=NAME_FILTER_MAX)] = "",
        page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        options = page.options()
        notices: list[str] = []
        _, result = _fleet_page(options, status_filter, q, page_number, notices)
        links = render.console_links(options.imagesearch_conn_id)
        rows = result.rows if result else []
        runs = _runs([row.run_id for row in rows], notices)
        now = datetime.now(UTC)
        return page.html(
            "fleet.html",
            tab="fleet",
            title="Fleet",
            notices=[*notices, *([links.notice] if links.notice else [])],
            source=f"{options.archive_table} on {options.archive_conn_id}",
            fleet=result,
            rows=[
                {
                    "snapshot": row,
                    "tone": render.status_tone(row.status),
                    "tags": render.tags(row.tags),
                    "expiry": render.expiry(row.expires_at, row.never_expires, now),
                    "console": links.url(row.instance_name, row.project_id),
                    "dag_ids": runs.get(row.run_id, []),
                }
                for row in rows
            ],
            status_filter=status_filter,
            q=q,
            page_number=page_number,
        )

    @app.get("/history", response_class=HTMLResponse)
    def history_view(
        status_filter: Annotated[str, Query(alias="status", max_length=STATUS_MAX)] = "",
        q: Annotated[str, Query(max_length=NAME_FILTER_MAX)] = "",
        page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
        days: Annotated[int | None, Query(ge=1, le=3660)] = None,
    ) -> HTMLResponse:
        options = page.options()
        window = days or options.history_days
        notices: list[str] = []
        engine, result = _fleet_page(options, status_filter, q, page_number, notices)
        points: dict[str, list[queries.StatusPoint]] = {}
        if engine is not None and result and result.rows:
            newest = max(row.fetched_at for row in result.rows)
            since = newest - timedelta(days=window)
            names = [row.instance_name for row in result.rows]
            points = (
                _read(
                    "archive",
                    notices,
                    lambda: queries.history(engine, options.archive_table, names, since),
                )
                or {}
            )
        chart = build_chart(points)
        runs = _runs([change.run_id for change in chart.changes], notices)
        links = render.console_links(options.imagesearch_conn_id)
        projects = {row.instance_name: row.project_id for row in result.rows} if result else {}
        return page.html(
            "history.html",
            tab="history",
            title="History",
            notices=[*notices, *([links.notice] if links.notice else [])],
            source=f"{options.archive_table} on {options.archive_conn_id}",
            fleet=result,
            chart=chart,
            consoles={name: links.url(name, project) for name, project in projects.items()},
            runs=runs,
            status_filter=status_filter,
            q=q,
            days=window,
            page_number=page_number,
        )

    @app.get("/libraries", response_class=HTMLResponse)
    def libraries_view(
        page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        options = page.options()
        notices: list[str] = []
        engine = _engine(options.ledger_conn_id, "ledger_conn_id", notices)
        found: list[queries.Library] = []
        if engine is not None:
            found = (
                _read("import ledger", notices, lambda: queries.libraries(engine, options.ledger_table)) or []
            )
        start = _offset(page_number, options.page_size)
        shown = found[start : start + options.page_size]
        runs = _runs([library.last_run.run_id for library in shown if library.last_run], notices)
        links = render.console_links(options.imagesearch_conn_id)
        return page.html(
            "libraries.html",
            tab="libraries",
            title="Libraries",
            notices=[*notices, *([links.notice] if links.notice else [])],
            source=f"{options.ledger_table} on {options.ledger_conn_id}",
            libraries=shown,
            total=len(found),
            consoles={library.instance_name: links.url(library.instance_name) for library in shown},
            runs=runs,
            success_outcomes=queries.SUCCESS_OUTCOMES,
            problem_outcomes=queries.PROBLEM_OUTCOMES,
            page_number=page_number,
            has_next=start + options.page_size < len(found),
        )

    @app.get("/problems", response_class=HTMLResponse)
    def problems_view(
        instance: Annotated[str, Query(min_length=1, max_length=255)],
        api: Annotated[str, Query(pattern="^v[12]$")],
        page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        options = page.options()
        notices: list[str] = []
        engine = _engine(options.ledger_conn_id, "ledger_conn_id", notices)
        rows: list[queries.ProblemRow] = []
        has_next = False
        if engine is not None:
            found = _read(
                "import ledger",
                notices,
                lambda: queries.problems(
                    engine,
                    options.ledger_table,
                    instance,
                    api,
                    offset=_offset(page_number, options.page_size),
                    limit=options.page_size,
                ),
            )
            if found:
                rows, has_next = found
        runs = _runs([row.run_id for row in rows], notices)
        return page.html(
            "problems.html",
            tab="libraries",
            title=f"Problem rows of {instance}",
            notices=notices,
            source=f"{options.ledger_table} on {options.ledger_conn_id}",
            instance=instance,
            api=api,
            rows=rows,
            runs=runs,
            page_number=page_number,
            has_next=has_next,
            first_row=_offset(page_number, options.page_size) + 1,
        )

    @app.get("/problems.csv")
    def problems_csv(
        instance: Annotated[str, Query(min_length=1, max_length=255)],
        api: Annotated[str, Query(pattern="^v[12]$")],
    ) -> Response:
        options = page.options()
        notices: list[str] = []
        engine = _engine(options.ledger_conn_id, "ledger_conn_id", notices)
        if engine is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, notices[0])
        rows = queries.all_problems(engine, options.ledger_table, instance, api)
        try:
            first = next(rows, None)
        except queries.TableMissing:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No import ledger yet") from None
        headers = {**SECURITY_HEADERS, "Content-Disposition": csv_disposition(instance, api)}
        return StreamingResponse(
            _csv_lines(first, rows), media_type="text/csv; charset=utf-8", headers=headers
        )

    return app


def csv_disposition(instance: str, api: str) -> str:
    """The CSV download's ``Content-Disposition``: an ASCII ``filename`` every client reads, and the
    library's own name (any letters) as RFC 6266/5987 ``filename*``, which browsers prefer.

    A header value must be Latin-1 for the server to send it: a name such as "图库" typed in the URL
    made the download a 500.
    """
    kept = "".join(c if c.isalnum() or c in "-_" else "_" for c in instance)[:64] or "library"
    ascii_name = "".join(c if c.isascii() else "_" for c in kept)
    disposition = f'attachment; filename="imagesearch-{ascii_name}-{api}-problems.csv"'
    if ascii_name != kept:
        disposition += f"; filename*=UTF-8''{quote(f'imagesearch-{kept}-{api}-problems.csv', safe='')}"
    return disposition


CSV_COLUMNS = ("row_number", "path", "outcome", "error_code", "error_message", "run_id", "updated_at")


def _csv_lines(first: queries.ProblemRow | None, rest: Iterator[queries.ProblemRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    started = time.monotonic()
    count = 0

    def drain() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    for row in itertools.chain([first] if first is not None else [], rest):
        writer.writerow(
            [
                render.csv_cell(row.row_number),
                render.csv_cell(row.path),
                render.csv_cell(row.outcome),
                render.csv_cell(row.error_code),
                render.csv_cell(row.error_message),
                render.csv_cell(row.run_id),
                render.csv_cell(row.updated_at.isoformat() if row.updated_at else ""),
            ]
        )
        count += 1
        if count % 1000 == 0:
            yield drain()
    yield drain()
    log.info("ImageSearch page: %d problem rows sent as CSV in %.1f s", count, time.monotonic() - started)
