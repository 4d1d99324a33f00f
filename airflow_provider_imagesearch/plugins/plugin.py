"""The ImageSearch page's Airflow plugin: a FastAPI app in the api-server and a navigation entry to it.

Registered twice, as the OpenLineage provider does: in ``get_provider_info()["plugins"]`` (so
``airflow providers plugins`` lists it) and as an ``airflow.plugins`` entry point (so it loads with the
default ``[core] lazy_discover_providers = True``, where Airflow skips provider-declared plugins).

Every Airflow process that loads plugins imports this module, task runners included: it imports no
FastAPI, SQLAlchemy or page code. The app is built at its first request (:class:`LazyPageApp`).

The navigation entry (Browse -> ImageSearch) opens the page in a new browser tab rather than inside the
UI's frame: Airflow frames plugin views in a sandbox without ``allow-popups`` or ``allow-top-navigation``
(and, on 3.1, without ``allow-downloads``), where the page's console links, DAG-run links and CSV download
cannot work.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

#: Where the api-server mounts the page (not one of Airflow's reserved prefixes).
URL_PREFIX = "/imagesearch"
#: A magnifying glass over a photo, for the navigation entry.
ICON = (
    "data:image/svg+xml;utf8,"
    "%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='%23888' "
    "stroke-width='2'%3E%3Crect x='2' y='4' width='14' height='12' rx='2'/%3E"
    "%3Ccircle cx='16' cy='16' r='4'/%3E%3Cpath d='M19 19l3 3'/%3E%3C/svg%3E"
)

Scope = dict[str, Any]


class LazyPageApp:
    """An ASGI app that builds the page's FastAPI app (``app.create_app``) at the first request."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_imagesearch.plugins.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)


page_app = LazyPageApp()


class ImageSearchPlugin(AirflowPlugin):
    """The ImageSearch page (Fleet, History, Libraries) at ``/imagesearch/`` of the API server."""

    name = "imagesearch"
    fastapi_apps = [{"app": page_app, "url_prefix": URL_PREFIX, "name": "ImageSearch page"}]
    external_views = [
        {
            "name": "ImageSearch",
            # Relative to the UI's base URL (its <base href>), so a deployment under a sub-path works.
            "href": URL_PREFIX.lstrip("/") + "/",
            "icon": ICON,
            "destination": "nav",
            # In the Browse menu: a link of its own in Airflow's navigation bar (the case of a single plugin
            # view, or nav_top_level) is drawn as a <button href=...> that opens nothing, on 3.1.8 and 3.3.2.
            "category": "browse",
        }
    ]
