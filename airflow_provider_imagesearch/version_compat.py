"""Airflow names whose home moved between the Airflow 3 releases this provider supports (3.1 and later).

The rest of the package imports these names from here and never from Airflow directly
(``tests/test_compat.py`` checks it), so a release that moves a name again is one change in one file.
The newest location is tried first: on current Airflow each import below is a name the task SDK has
already loaded, so a DAG file that imports the operator or sensor pays nothing for this module.

What moved, and where it was before:

- ``conf``: ``airflow.sdk`` since 3.2; ``airflow.configuration`` before.
- ``AirflowFailException``, ``AirflowSensorTimeout``, ``AirflowSkipException``: ``airflow.sdk.exceptions``
  since 3.2; ``airflow.exceptions`` before (the same classes the 3.1 task runner catches).
- ``amask_secret``: ``airflow.sdk.log`` since 3.3; before it there is only the sync ``mask_secret``.
- ``Connection.aextra_dejson()``: since 3.3; before it there is only the sync ``extra_dejson``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from airflow.sdk import Connection

try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[assignment]

try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with the log masker from async code (a trigger's event loop).

    :param secret: the value to mask in every log line that follows.
    """
    try:
        from airflow.sdk.log import amask_secret as sdk_amask_secret
    except ImportError:  # Airflow 3.1-3.2
        # Their sync mask_secret is safe on the event loop: it registers the mask in this process,
        # and its message to the supervisor either goes through (3.2, greenback) or is refused
        # before it can block (3.1: async_to_sync raises on a loop thread, and mask_secret
        # suppresses the error).
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
        return
    await sdk_amask_secret(secret)


async def aextra_dejson(conn: Connection) -> dict[str, Any]:
    """The connection's extras as a dict, its secrets masked, from async code.

    :param conn: the connection, as ``BaseHook.aget_connection`` returns it.
    """
    if hasattr(conn, "aextra_dejson"):
        extra: dict[str, Any] = await conn.aextra_dejson()
        return extra
    # Airflow 3.1-3.2: extra_dejson masks through the sync mask_secret, safe on the loop (see above).
    return dict(conn.extra_dejson)


def sync_dag_to_db(dag: Any) -> Any:
    """Register an in-memory DAG so ``dag.test()`` can create a run for it (apache/airflow#56657).

    ``DagBag`` and ``sync_bag_to_db`` live in ``airflow.dag_processing.dagbag`` since 3.2, in
    ``airflow.models.dagbag`` before.

    :param dag: the DAG to register; returned as given.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    try:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


def shared_stream_producer_base() -> Any:
    """The triggerer's ``SharedStreamProducer`` base class (Airflow 3.3+).

    ``airflow.triggers.shared_stream`` does not exist before 3.3; only the triggerer of 3.3+ asks a
    trigger for its shared stream producer, so this is never called on 3.1-3.2.
    """
    from airflow.triggers.shared_stream import SharedStreamProducer

    return SharedStreamProducer


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "aextra_dejson",
    "amask_secret",
    "conf",
    "shared_stream_producer_base",
    "sync_dag_to_db",
]
