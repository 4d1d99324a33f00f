"""Default identities, limits and error bodies of the emulator.

Kept dependency-free so that ``airflow_provider_imagesearch.emulator`` can re-export the identity
constants without importing the server (tests and the demo only need the strings).
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_REGION = "cn-north-4"
DEFAULT_PROJECT_ID = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"
#: A second project of the default region (Huawei sub-projects are named ``{region}_{suffix}``). A token
#: scoped by the region's name is for DEFAULT_PROJECT_ID only; this one needs a token scoped by its id or name.
DEFAULT_SUB_PROJECT_NAME = "cn-north-4_reporting"
DEFAULT_SUB_PROJECT_ID = "5d1c9e7a3b2f4c6d8e0a1b2c3d4e5f60"
DEFAULT_DOMAIN = "demo-account"
DEFAULT_USER = "demo-user"
DEFAULT_PASSWORD = "Demo-Passw0rd!x"
DEFAULT_ACCESS_KEY = "EMUAKEXAMPLE0000001"
DEFAULT_SECRET_KEY = "emu-sk-Ex4mple-Secret-0001"
DEFAULT_TEMP_ACCESS_KEY = "EMUTMPAKEXAMPLE0001"
DEFAULT_TEMP_SECRET_KEY = "emu-tmp-sk-Secret-0002"
DEFAULT_SECURITY_TOKEN = "emu-security-token-Secret-0003"
DEFAULT_READY_TOKEN = "MIIemu-ready-token-Secret-0004"

#: The one line the CLI prints on stdout when ready: ``IMAGESEARCH_EMULATOR_URL=http://127.0.0.1:PORT``.
URL_PREFIX = "IMAGESEARCH_EMULATOR_URL="

DEFAULT_MODEL = "common-search"
#: Models named by the docs (``common-search``) and the SDK docstring (the other two).
KNOWN_MODELS = frozenset({"common-search", "image-recommend", "image-copyright"})
#: What create/query answer in ``domain``: the reference calls it the model's *display name* (its example
#: value is "model description"), not the model id. The real display names are unknown; these are the
#: emulator's, worded after the models' documented purposes, and deliberately differ from the ids so a
#: client cannot mistake one for the other. A seeded model outside this map is answered as its id.
MODEL_DISPLAY_NAMES = {
    "common-search": "General image search",
    "image-recommend": "Copyright image recommendation",
    "image-copyright": "Image infringement detection",
}
#: The only capacity the service supports.
DEFAULT_LEVEL = 30_000_000
MAX_TAGS = 10
#: ``/v1/{pid}/service/{name}`` would be ambiguous with ``/v1/{pid}/{name}/image`` for this name.
RESERVED_INSTANCE_NAMES = frozenset({"service"})

#: Above this the "backend" answers IS.0006 (the v1 limit is undocumented; this is the emulator's).
SERVICE_MAX_BODY = 10 * 1024 * 1024
#: Above this the "gateway" answers 413 APIGW.0201 (documented gateway limit: 12 MB).
GATEWAY_MAX_BODY = 12 * 1024 * 1024
#: Largest request head (request line + headers) accepted; larger gets 494 APIGW.0201.
MAX_HEAD = 64 * 1024
#: Documented nowhere; 15 minutes is what AWS-style gateways use and what the brief asks for.
MAX_CLOCK_SKEW_S = 15 * 60
#: Bounded request log kept for ``GET /_emulator/requests``.
REQUEST_LOG_SIZE = 50_000

#: Status values the docs enumerate (``CREATION_FAILD`` is the real misspelt wire value).
STATUSES = ("NORMAL", "ARREARAGE", "CREATION", "CREATION_FAILD", "DELETING", "DELETING_FAILED", "ABNORMAL")
#: A description containing this marker makes instance creation end in ``CREATION_FAILD``.
FAIL_MARKER = "[emulator:fail]"

# --- ImageSearch service errors (HTTP 400). IS.0001-IS.0012 are documented; the rest are emulator-specific.
IS_MISSING = ("IS.0001", "The request parameter is missing or empty.")
IS_BAD_TYPE = ("IS.0002", "The type of the request parameter is not supported.")
IS_PATH_NULL = ("IS.0003", "Arguments of path can not be null.")
IS_BODY_TOO_BIG = ("IS.0006", "The request body is too big.")
IS_BAD_INSTANCE = ("IS.0007", "Invalid instance name.")
IS_BAD_JSON = ("IS.0008", "The JSON format of the input data is incorrect.")
#: Documented codes the emulator only produces as faults (``sequence: ["IS.0009", "ok"]``): the messages
#: are the reference's (IS.0004's is the one its delete-instance example shows, not the table's).
IS_TOKEN_ABNORMAL = ("IS.0004", "The authentication token is abnormal.")
IS_HEADER_MISSING = ("IS.0005", "The header is missing or empty.")
IS_INTERNAL = ("IS.0009", "The request failed due to an internal error.")
IS_METHOD_FORBIDDEN = ("IS.0011", "The user is not allowed to use the request method.")
IS_TIMED_OUT = ("IS.0012", "Operation timed out.")
SERVICE_FAULT_ERRORS: dict[str, tuple[str, str]] = {
    code: (code, message)
    for code, message in (
        IS_TOKEN_ABNORMAL,
        IS_HEADER_MISSING,
        IS_INTERNAL,
        IS_METHOD_FORBIDDEN,
        IS_TIMED_OUT,
    )
}
# Emulator-specific (the real table continues past IS.0012 but could not be read):
IS_DUPLICATE_INSTANCE = ("IS.0013", "The instance already exists.")
IS_IMAGE_NOT_FOUND = ("IS.0014", "The image does not exist.")
IS_INSTANCE_NOT_READY = ("IS.0015", "The instance is not in the NORMAL state.")
IS_UNKNOWN_TAG = ("IS.0016", "The tag is not defined on the instance.")
#: v2 (MMS): an add without ``force`` of an item id already in the service.
IS_ITEM_EXISTS = ("IS.0017", "The item already exists.")

# --- API Gateway errors: (status, code, message).
GW_NOT_FOUND = (404, "APIGW.0101", "The API does not exist or has not been published in the environment.")
GW_NO_AUTH = (401, "APIGW.0301", "Incorrect IAM authentication information: x-auth-token not found")
GW_BAD_TOKEN = (401, "APIGW.0301", "Incorrect IAM authentication information: decrypt token fail")
GW_UNKNOWN_AK = (401, "APIGW.0301", "Incorrect IAM authentication information: Get secretKey failed")
GW_BAD_SIGNATURE = (401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail")
GW_SIGNATURE_EXPIRED = (401, "APIGW.0301", "Incorrect IAM authentication information: signature expired")
GW_BAD_SECURITY_TOKEN = (
    401,
    "APIGW.0301",
    "Incorrect IAM authentication information: verify security token fail",
)
GW_FORBIDDEN = (403, "APIGW.0302", "The IAM user is not authorized to access the API.")
GW_TOKEN_EXPIRED = (401, "APIGW.0307", "The token must be updated.")
GW_THROTTLED = (429, "APIGW.0308", "The throttling threshold has been reached.")
GW_PROJECT_UNAVAILABLE = (403, "APIGW.0310", "The project is unavailable.")
GW_TOO_LARGE = (413, "APIGW.0201", "Request entity too large.")
GW_HEAD_TOO_LARGE = (494, "APIGW.0201", "Request headers too large.")
GW_BAD_REQUEST = (400, "APIGW.0201", "API request error.")
GW_INTERNAL = (500, "APIGW.0601", "Internal server error.")
GW_UNAVAILABLE = (503, "APIGW.0613", "The IAM service is currently unavailable.")

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>API Gateway</center>\r\n</body>\r\n</html>\r\n"
)

_DEFAULT_SEED: dict[str, Any] = {
    "projects": {DEFAULT_REGION: DEFAULT_PROJECT_ID, DEFAULT_SUB_PROJECT_NAME: DEFAULT_SUB_PROJECT_ID},
    "users": [{"name": DEFAULT_USER, "password": DEFAULT_PASSWORD, "domain": DEFAULT_DOMAIN}],
    "access_keys": [
        {"access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY},
        {
            "access_key": DEFAULT_TEMP_ACCESS_KEY,
            "secret_key": DEFAULT_TEMP_SECRET_KEY,
            "security_token": DEFAULT_SECURITY_TOKEN,
        },
    ],
    "ready_tokens": [DEFAULT_READY_TOKEN],
    "instances": [],
    "images": {},
    "v2_services": [],
}


def region_of(project_name: str) -> str:
    """The region a project belongs to: its name up to the first ``_`` (``cn-north-4_reporting``)."""
    return project_name.split("_", 1)[0]


def default_seed() -> dict[str, Any]:
    """A fresh copy of the default seed (default project and a sub-project, user, access keys, ready token)."""
    return copy.deepcopy(_DEFAULT_SEED)
