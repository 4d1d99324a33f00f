"""Local emulator of Huawei Cloud ImageSearch (v1 and the v2 MMS data API) and the IAM token endpoint.

A real HTTP/1.1 server on loopback (standard library only, no Airflow import) that the provider's tests,
demo and benchmarks talk to instead of Huawei Cloud. One port serves everything: the eight v1 routes, the
five v2 routes, ``POST /v3/auth/tokens`` (+ ``GET /v3/projects``) and the unauthenticated control routes
``/_emulator/...``. It starts empty (no instance, no v2 service) unless seeded. The full reference is the
``README.md`` next to this file (shipped in the package); users' DAG tests use it through
:mod:`airflow_provider_imagesearch.testing`.

Running it
----------
* CLI: ``python -m airflow_provider_imagesearch.emulator`` (console script ``imagesearch-emulator``) with
  ``--host`` (loopback only; default 127.0.0.1), ``--port`` (0 = free port), ``--seed FILE``, ``--state FILE``
  (loaded at start if it exists, saved on shutdown and on ``POST /_emulator/save``), ``--token-lifetime S``
  (86400), ``--creation-seconds S`` (5), ``--deletion-seconds S`` (5), ``--faults JSON``, ``--quiet``. When ready
  it prints one line ``IMAGESEARCH_EMULATOR_URL=http://127.0.0.1:PORT`` on stdout; SIGTERM/SIGINT stop it.
  ``--print-connection`` prints ``AIRFLOW_CONN_IMAGESEARCH_DEFAULT`` values for ``--port`` and exits;
  ``--seed seed.json`` with no such file is the sample seed shipped in the package.
* Python: ``Emulator(...)`` (background thread) or ``EmulatorProcess(...)`` (child process), both context
  managers with ``.url``, ``.control`` (:class:`EmulatorClient`), ``.set_faults(**kw)``, ``.stats()``,
  ``.reset_stats()``, ``.expire_tokens()``, ``.upsert_instance(name, ...)``, ``.requests_log()``.

Default identity (present unless a seed replaces it)
----------------------------------------------------
Region ``cn-north-4`` holds two projects: the default one, named after the region, -> ``DEFAULT_PROJECT_ID``,
and the sub-project ``DEFAULT_SUB_PROJECT_NAME`` (``cn-north-4_reporting``) -> ``DEFAULT_SUB_PROJECT_ID``. IAM
scopes a token by project name or id to that one project (the region's name = the default project); a
token for one project gets 403 APIGW.0302 on another. IAM user ``demo-user`` / ``Demo-Passw0rd!x`` in domain
``demo-account``; permanent AK/SK ``DEFAULT_ACCESS_KEY``/``DEFAULT_SECRET_KEY``; temporary AK/SK
``DEFAULT_TEMP_ACCESS_KEY``/``DEFAULT_TEMP_SECRET_KEY`` that needs ``X-Security-Token: DEFAULT_SECURITY_TOKEN``;
ready token ``DEFAULT_READY_TOKEN`` (valid for every project, never expires, revoked by expire-tokens).

Behaviour the docs leave open (emulator choices)
------------------------------------------------
* Create answers 200 with status ``CREATION``; it becomes ``NORMAL`` after ``creation_seconds`` -- or
  ``CREATION_FAILD`` when the request's ``description`` contains ``[emulator:fail]``. Delete answers
  ``{"result": "success"}`` and the instance is ``DELETING`` for ``deletion_seconds``, then gone.
  Transitions are computed lazily from timestamps. ``service`` is a reserved instance name (it would make
  ``/v1/{pid}/service/image`` ambiguous).
* ``domain`` (create/query) is the model's display name, not its id: ``common-search`` -> "General image
  search", ``image-recommend`` -> "Copyright image recommendation", ``image-copyright`` -> "Image
  infringement detection" (names chosen by the emulator: the reference only says "display name").
* Error codes (HTTP 400): a documented code only with its documented meaning (v1 IS.0001-IS.0016, v2
  MMS.*; :data:`~.constants.V1_DOCUMENTED_CODES`, :data:`~.constants.V2_DOCUMENTED_CODES`): IS.0001 missing
  parameter, IS.0002 wrong type or outside the documented range / bad base64 / not JPEG-PNG-BMP / unknown
  model / level other than 30000000, IS.0003 "Arguments of path can not be null." (also a DELETE image with
  no body), IS.0005 a body without a ``Content-Type``, IS.0006 body > 10 MiB, IS.0007 "Invalid instance
  name." (also a name no instance has), IS.0008 body not a JSON object (or not UTF-8, or with
  ``NaN``/``Infinity``), IS.0013 an empty ``X-Auth-Token``, IS.0014 an image operation on a non-NORMAL
  instance, IS.0015 one on an instance whose model is missing, IS.0016 a ``path`` the service cannot fetch;
  v2 MMS.0003 "Invalid parameter: <field>", MMS.1001 unknown service. Where the docs give no code, the
  emulator's own (:data:`~.constants.EMULATOR_OWN_CODES`, outside every documented range): IS.9001
  instance exists, IS.9002 image not found, IS.9003 tag not defined, MMS.9001 item exists, MMS.9002 item
  not found. Field types are the reference's: ``description`` a string, create ``tags`` an array of
  strings, image and search ``tags`` an object (``null`` = absent).
* Gateway: unknown route or method -> 404 APIGW.0101; body > 12 MiB -> 413 APIGW.0201; auth errors as in
  :mod:`.auth`. Every response carries ``X-Request-Id`` (and gateway errors repeat it as ``request_id``).
* Images: adding an existing path overwrites it; modify replaces the tags. Without ``file``, add needs
  ``path`` to be an OBS HTTPS URL of the instance's region (``https://{bucket}.obs.{region}.myhuaweicloud.com/
  {key}``, else IS.0002) and the image is identified by it (as if fetched from OBS); with ``file``, ``path``
  is only the id (any non-empty string). Search similarity is a deterministic function of the
  two images' digests (1.0 for identical bytes/path, otherwise 0.05-0.95), sorted descending, ``count`` is
  the total before paging; a crop ``box`` changes the query digest.
* ``POST /v3/auth/tokens`` with a scope naming an unknown project -> 400 (Keystone-style body).

Control endpoints (JSON, no auth, never faulted, not counted in stats)
---------------------------------------------------------------------
``GET health``, ``GET stats``, ``POST reset-stats`` (also clears the log), ``POST reset`` (back to the start
state), ``GET requests[?limit=N]`` (last 50,000 API/IAM requests, with each error's code), ``GET|POST
faults`` (POST merges a partial FaultConfig; ``{"reset": true}`` clears), ``POST expire-tokens``
(``{"include_ready": false}`` spares ready tokens), ``POST instances`` (list of seed-format instances, or
``{"instances": [...]}``), ``POST images``, ``POST v2-services``, ``POST v2-items``, ``DELETE
instances/{project_id}/{name}``, ``GET state``, ``POST save``, ``GET|POST config`` (token_lifetime,
creation_seconds, deletion_seconds, own_codes_as).

Stats: ``token_expiries`` counts requests refused because their token had expired or was revoked (401
APIGW.0307); ``token_expiry_events`` counts expire-tokens calls plus ``token_expiry_interval`` boundaries;
``auth_failures`` counts refused credentials (gateway 401/403 auth answers and IAM 401s), not injected faults.

Faults: see :mod:`.faults` (``FaultConfig``): gateway errors (5xx, 429, 403), ``drop`` (nothing processed),
the documented service errors ``IS.0004``/``IS.0005``/``IS.0009``/``IS.0011``/``IS.0012`` on v1 routes and
``MMS.0001``/``MMS.0002``/``MMS.1014``/``MMS.1015``/``MMS.1016``/``ModelArts.4204`` on v2 routes (400, answered after
authentication without processing), ``drop_after`` (processed, answer lost), ``slow``, malformed bodies and
token expiry; a ``sequence`` names them one per request (``["IS.0009", "ok"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.emulator.constants import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_PROJECT_ID,
    DEFAULT_READY_TOKEN,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_SUB_PROJECT_ID,
    DEFAULT_SUB_PROJECT_NAME,
    DEFAULT_TEMP_ACCESS_KEY,
    DEFAULT_TEMP_SECRET_KEY,
    DEFAULT_USER,
    FAIL_MARKER,
    default_seed,
)

if TYPE_CHECKING:
    from airflow_provider_imagesearch.emulator.client import EmulatorClient, EmulatorControlError
    from airflow_provider_imagesearch.emulator.faults import FaultConfig
    from airflow_provider_imagesearch.emulator.runner import Emulator, EmulatorProcess

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_DOMAIN",
    "DEFAULT_PASSWORD",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_READY_TOKEN",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SECURITY_TOKEN",
    "DEFAULT_SUB_PROJECT_ID",
    "DEFAULT_SUB_PROJECT_NAME",
    "DEFAULT_TEMP_ACCESS_KEY",
    "DEFAULT_TEMP_SECRET_KEY",
    "DEFAULT_USER",
    "FAIL_MARKER",
    "Emulator",
    "EmulatorClient",
    "EmulatorControlError",
    "EmulatorProcess",
    "FaultConfig",
    "default_seed",
]

_LAZY = {
    "Emulator": "airflow_provider_imagesearch.emulator.runner",
    "EmulatorProcess": "airflow_provider_imagesearch.emulator.runner",
    "EmulatorClient": "airflow_provider_imagesearch.emulator.client",
    "EmulatorControlError": "airflow_provider_imagesearch.emulator.client",
    "FaultConfig": "airflow_provider_imagesearch.emulator.faults",
}


def __getattr__(name: str) -> Any:
    """Import the server machinery only when asked for: ``import ...emulator`` stays cheap."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
