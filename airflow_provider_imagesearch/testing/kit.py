"""The testing kit's handle on the emulator: seeding, faults, the request log, the connection.

:class:`ImageSearchEmulatorKit` is what the ``imagesearch_emulator`` fixture yields and what
:func:`emulated_imagesearch` (for tests outside pytest) returns. Nothing here imports Airflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_imagesearch.auth import TOKEN_CACHE
from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.connection import (
    DEFAULT_CONN_ID,
    connection_fields,
    connection_json,
    env_name,
)
from airflow_provider_imagesearch.emulator.runner import UNSET, Emulator, _Unset
from airflow_provider_imagesearch.testing.guard import HuaweiCloudGuard

#: Retry waits of the kit's connections: the provider's policy, with short waits so a test that injects
#: faults takes milliseconds, not seconds. ``export_connection(backoff_initial=0.5, backoff_max=20)``
#: restores the production waits.
TEST_RETRY_EXTRAS: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.1}


def image_digest(data: bytes) -> str:
    """The emulator's identity of an image given by its bytes: a search by the same bytes scores 1.0."""
    return hashlib.sha256(data).hexdigest()


class ImageSearchEmulatorKit:
    """A running emulator and what a test does with it.

    :param emulator: the running :class:`~airflow_provider_imagesearch.emulator.Emulator`.
    :param conn_id: the connection :meth:`export_connection` defines by default.
    """

    def __init__(self, emulator: Emulator, conn_id: str = DEFAULT_CONN_ID) -> None:
        self.emulator = emulator
        self.conn_id = conn_id
        self.project_id = c.DEFAULT_PROJECT_ID
        self.region = c.DEFAULT_REGION
        #: The guard in force (the fixture and :func:`emulated_imagesearch` install one), or None.
        self.guard: HuaweiCloudGuard | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        """The emulator's base URL (``http://127.0.0.1:PORT``): v1, v2, IAM and the control routes."""
        return self.emulator.url

    @property
    def blocked_hosts(self) -> list[str]:
        """Public Huawei Cloud hosts something tried to reach during the test (and was refused)."""
        return list(self.guard.blocked) if self.guard is not None else []

    # --- the connection -----------------------------------------------------------------------------
    def connection(self, auth: str = "iam_password", **extra: Any) -> dict[str, Any]:
        """The fields of an ``imagesearch`` connection to the emulator (``auth``: iam_password, aksk, token)."""
        return connection_fields(self.url, auth, **{**TEST_RETRY_EXTRAS, **extra})

    def export_connection(self, conn_id: str | None = None, auth: str = "iam_password", **extra: Any) -> str:
        """Define the connection as ``AIRFLOW_CONN_<CONN_ID>`` (undone by :meth:`restore_environment`).

        :param conn_id: the connection id (default: the kit's, ``imagesearch_default``).
        :param auth: ``iam_password`` (default), ``aksk`` or ``token``.
        :param extra: more extras, e.g. ``instance_name`` or retry settings.
        :return: the connection id.
        """
        conn_id = conn_id or self.conn_id
        name = env_name(conn_id)
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        os.environ[name] = connection_json(self.url, auth, **{**TEST_RETRY_EXTRAS, **extra})
        return conn_id

    def restore_environment(self) -> None:
        """Undo every :meth:`export_connection`."""
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    # --- seeding --------------------------------------------------------------------------------------
    def add_instance(
        self,
        name: str,
        *,
        status: str = "NORMAL",
        tags: Sequence[str] = (),
        description: str = "",
        model: str = c.DEFAULT_MODEL,
        images: Mapping[str, Mapping[str, Any]] | None = None,
        transition_after_s: float | None = None,
        next_status: str | _Unset | None = UNSET,
        expired_date_ms: int = -1,
    ) -> dict[str, Any]:
        """Create (or replace) a v1 instance, as the API would describe it; returns its API body.

        :param status: its status (``NORMAL``, ``CREATION``, ``ARREARAGE``, ...).
        :param tags: the tag names it defines.
        :param images: path -> ``{"tags": {...}}`` (replaces its images; see :meth:`add_image`).
        :param transition_after_s: seconds until its status changes to ``next_status`` (default: CREATION
            becomes NORMAL, DELETING disappears; ``next_status=None``: it disappears).
        """
        return self.emulator.upsert_instance(
            name,
            project_id=self.project_id,
            status=status,
            tags=list(tags),
            description=description,
            model=model,
            images=None if images is None else {p: dict(v) for p, v in images.items()},
            transition_after_s=transition_after_s,
            next_status=next_status,
            expired_date_ms=expired_date_ms,
        )

    def add_image(
        self,
        instance: str,
        path: str,
        *,
        tags: Mapping[str, Any] | None = None,
        image: bytes | None = None,
    ) -> None:
        """Put an image into an instance's library (its other images stay).

        :param path: the image's id in the library (its OBS URL).
        :param tags: its tags (keys the instance defines).
        :param image: its bytes, so that a search by the same bytes (``file_base64``) finds it with
            similarity 1.0; without them the image is known by its path (a search by ``path`` finds it).
        """
        entry: dict[str, Any] = {"tags": dict(tags or {})}
        if image is not None:
            entry["digest"] = image_digest(image)
        self.emulator.control.add_images(instance, {path: entry}, project_id=self.project_id)

    def add_v2_service(
        self,
        name: str,
        *,
        custom_tags: Sequence[str] | None = None,
        custom_num_tags: Sequence[str] | None = None,
        search_types: Sequence[str] | None = None,
        items: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create (or replace) a v2 (MMS) service: v2 services are made in the console, not by the API.

        :param custom_tags: the string tag keys it defines (None: any key is accepted).
        :param custom_num_tags: the numeric tag keys it defines (None: any key).
        :param search_types: the search types it offers (None: IMAGE, CATEGORY, KEYWORD, TEXT).
        :param items: item_id -> item, as :meth:`add_v2_item` takes them (replaces its items).
        """
        return self.emulator.upsert_v2_service(
            name,
            project_id=self.project_id,
            custom_tags=None if custom_tags is None else list(custom_tags),
            custom_num_tags=None if custom_num_tags is None else list(custom_num_tags),
            search_types=None if search_types is None else list(search_types),
            items=None if items is None else {k: dict(v) for k, v in items.items()},
        )

    def add_v2_item(
        self,
        service: str,
        item_id: str,
        *,
        image_url: str | None = None,
        image: bytes | None = None,
        desc: str | None = None,
        custom_tags: Mapping[str, str] | None = None,
        custom_num_tags: Mapping[str, float] | None = None,
        keywords: Sequence[str] | None = None,
    ) -> None:
        """Put an item into a v2 service (its other items stay).

        :param image_url: the image's URL: a search by the same ``image_url`` scores 1.0.
        :param image: or its bytes: a search by the same ``image_base64`` scores 1.0.
        """
        entry: dict[str, Any] = {
            "custom_tags": dict(custom_tags or {}),
            "custom_num_tags": dict(custom_num_tags or {}),
            "keywords": list(keywords or []),
        }
        if image is not None:
            entry["digest"] = image_digest(image)
        if image_url is not None:
            entry["image_url"] = image_url
        if desc is not None:
            entry["desc"] = desc
        self.emulator.control.add_v2_items(service, {item_id: entry}, project_id=self.project_id)

    # --- reading the emulator's state ---------------------------------------------------------------------
    def instance(self, name: str) -> dict[str, Any] | None:
        """The instance as the emulator holds it now (seed form: status, tags, ...), or None."""
        for item in self.emulator.control.state()["instances"]:
            if item["name"] == name and item["project_id"] == self.project_id:
                return dict(item)
        return None

    def images(self, instance: str) -> dict[str, dict[str, Any]]:
        """path -> tags of an instance's images."""
        state = self.emulator.control.state()
        images = state.get("images", {}).get(f"{self.project_id}/{instance}", {})
        return {path: dict(image.get("tags", {})) for path, image in images.items()}

    def v2_items(self, service: str) -> dict[str, dict[str, Any]]:
        """item_id -> item (desc, tags, keywords, digest) of a v2 service."""
        for item in self.emulator.control.state()["v2_services"]:
            if item["name"] == service and item["project_id"] == self.project_id:
                return dict(item["items"])
        return {}

    # --- faults -----------------------------------------------------------------------------------------
    def inject_faults(self, **settings: Any) -> dict[str, Any]:
        """Merge fault settings (``FaultConfig`` fields: ``error_5xx_rate``, ``throttle_429_rate``,
        ``latency_seconds``, ``service_error_rate``, ``sequence``...); returns the whole config."""
        return self.emulator.set_faults(**settings)

    def fail_next(self, *faults: str) -> dict[str, Any]:
        """The next requests get these faults, one each, in order (``"ok"`` for none):
        ``fail_next("503_json", "ok", "IS.0009")``."""
        return self.emulator.set_faults(sequence=list(faults))

    def clear_faults(self) -> None:
        self.emulator.control.reset_faults()

    def set_timings(
        self, *, creation_seconds: float | None = None, deletion_seconds: float | None = None
    ) -> None:
        """How long a created instance stays ``CREATION`` and a deleted one ``DELETING`` (the kit: 0)."""
        settings = {"creation_seconds": creation_seconds, "deletion_seconds": deletion_seconds}
        self.emulator.control.set_config(**{k: v for k, v in settings.items() if v is not None})

    def expire_tokens(self) -> int:
        """Revoke every IAM token issued so far (the next call with one is refused 401 APIGW.0307)."""
        return self.emulator.expire_tokens()

    def answer_own_codes_as(self, code: str | None) -> None:
        """Answer the emulator's own error codes (cases the docs give no code for) as ``code``: proves a
        DAG does not depend on them. None: as they are."""
        self.emulator.control.set_config(own_codes_as=code)

    # --- the request log -------------------------------------------------------------------------------
    def requests(self, route: str | None = None) -> list[dict[str, Any]]:
        """The requests answered since the test began, oldest first: ``method``, ``path``, ``route`` (e.g.
        ``POST /v1/{project_id}/{instance_name}/image``), ``status``, ``error_code``, ``fault``, ``auth``,
        ``instance``, ``ts``. ``route``: only those whose route contains this text (``"/image/search"``)."""
        log = self.emulator.requests_log()
        return [r for r in log if route is None or route in r["route"]]

    def api_requests(self) -> list[dict[str, Any]]:
        """:meth:`requests` without the IAM token requests."""
        return [r for r in self.requests() if not r["route"].endswith("/v3/auth/tokens")]

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats()

    def reset(self) -> None:
        """Back to the emulator's start: no instance, no service (or the seed's), no fault, empty log; and
        the provider's process-wide IAM token cache emptied, so the next request asks for a token as a
        fresh process would (a token cached by an earlier test, or revoked by its ``expire_tokens()``,
        would otherwise decide what this test's first requests look like)."""
        self.emulator.control.reset()
        TOKEN_CACHE.clear()


@contextlib.contextmanager
def emulated_imagesearch(
    *,
    conn_id: str = DEFAULT_CONN_ID,
    auth: str = "iam_password",
    seed: dict[str, Any] | None = None,
    guard: bool = True,
    **connection_extra: Any,
) -> Iterator[ImageSearchEmulatorKit]:
    """An emulator for a test outside pytest (unittest, a script): started, connection exported, stopped.

    ::

        with emulated_imagesearch() as kit:
            kit.add_instance("shop-main", tags=["color"])
            run_dag(my_dag)
            assert kit.requests("/image/search")

    :param conn_id: the connection defined as ``AIRFLOW_CONN_<CONN_ID>`` for the block.
    :param auth: its auth type: ``iam_password``, ``aksk`` or ``token``.
    :param seed: a seed for the emulator (see the emulator's docs); default: empty.
    :param guard: make a request to a public Huawei Cloud host fail (:mod:`.guard`) for the block.
    """
    with Emulator(seed=seed, creation_seconds=0.0, deletion_seconds=0.0) as emulator:
        kit = ImageSearchEmulatorKit(emulator, conn_id)
        host_guard = HuaweiCloudGuard() if guard else None
        if host_guard is not None:
            host_guard.install()
            kit.guard = host_guard
        TOKEN_CACHE.clear()  # a token cached for an earlier emulator is not this one's
        try:
            kit.export_connection(conn_id, auth, **connection_extra)
            yield kit
        finally:
            kit.restore_environment()
            TOKEN_CACHE.clear()  # its tokens were the emulator's, which is about to stop
            if host_guard is not None:
                host_guard.uninstall()
