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

# --- ImageSearch v1 service errors (HTTP 400): the documented table, page imagesearch_02_0019.
#: Every row of the v1 error table (IS.0001-IS.0016, the Chinese page shows the rows after IS.0012) with
#: its documented message. The emulator answers a documented code only with its documented meaning.
V1_DOCUMENTED_CODES: dict[str, str] = {
    "IS.0001": "The request parameter is missing or empty.",
    "IS.0002": "The type of the request parameter is not supported.",
    "IS.0003": "The request parameter cannot be empty.",
    "IS.0004": "Exception verifying token.",
    "IS.0005": "The header is missing or empty.",
    "IS.0006": "The request body is too big.",
    "IS.0007": "Invalid instance name.",
    "IS.0008": "The JSON format of the input data is incorrect.",
    "IS.0009": "The request failed due to an internal error.",
    "IS.0010": "The request method is not allowed.",
    "IS.0011": "The user is not allowed to use the request method.",
    "IS.0012": "Operation timed out.",
    "IS.0013": "The token is empty.",
    "IS.0014": "Instance status is abnormal.",
    "IS.0015": "The model file does not exist.",
    "IS.0016": "The path is invalid.",
}
IS_MISSING = ("IS.0001", V1_DOCUMENTED_CODES["IS.0001"])
IS_BAD_TYPE = ("IS.0002", V1_DOCUMENTED_CODES["IS.0002"])
#: The message of the reference's own examples (delete/modify image), not the table's.
IS_PATH_NULL = ("IS.0003", "Arguments of path can not be null.")
IS_HEADER_MISSING = ("IS.0005", V1_DOCUMENTED_CODES["IS.0005"])
IS_BODY_TOO_BIG = ("IS.0006", V1_DOCUMENTED_CODES["IS.0006"])
#: A malformed name, or a name no instance of the project has ("check that the name is correct").
IS_BAD_INSTANCE = ("IS.0007", V1_DOCUMENTED_CODES["IS.0007"])
IS_BAD_JSON = ("IS.0008", V1_DOCUMENTED_CODES["IS.0008"])
#: An ``X-Auth-Token`` header that is there but empty.
IS_TOKEN_EMPTY = ("IS.0013", V1_DOCUMENTED_CODES["IS.0013"])
#: An image operation on an instance that is not usable (any status but ``NORMAL``).
IS_INSTANCE_ABNORMAL = ("IS.0014", V1_DOCUMENTED_CODES["IS.0014"])
#: An image operation on an instance whose model the service does not have (a seeded unknown model).
IS_MODEL_MISSING = ("IS.0015", V1_DOCUMENTED_CODES["IS.0015"])
#: An add without ``file`` whose ``path`` is not an OBS HTTPS URL of the instance's region.
IS_PATH_INVALID = ("IS.0016", V1_DOCUMENTED_CODES["IS.0016"])
#: Documented codes the emulator only produces as faults (``sequence: ["IS.0009", "ok"]``): the messages
#: are the reference's (IS.0004's is the one its delete-instance example shows, not the table's).
IS_TOKEN_ABNORMAL = ("IS.0004", "The authentication token is abnormal.")
IS_INTERNAL = ("IS.0009", V1_DOCUMENTED_CODES["IS.0009"])
IS_METHOD_FORBIDDEN = ("IS.0011", V1_DOCUMENTED_CODES["IS.0011"])
IS_TIMED_OUT = ("IS.0012", V1_DOCUMENTED_CODES["IS.0012"])

# --- ImageSearch v2 (MMS) service errors (HTTP 400): page imagesearch_02_0043 ("图像搜索 V2 错误码").
#: The rows of the v2 table the emulator uses or injects, with their documented messages. v2 errors are
#: ``MMS.*``, ``ModelArts.*``, ``APIGW.*`` or ``APIG.*``, never ``IS.*``. MMS.0003 carries the field, as
#: the v2 pages' examples do: ``{"error_code": "MMS.0003", "error_msg": "Invalid parameter: item_id"}``.
V2_DOCUMENTED_CODES: dict[str, str] = {
    "MMS.0001": "Request is unauthorized.",
    "MMS.0002": "Request cannot be accessed by the current authorization.",
    "MMS.0003": "Invalid parameter.",
    "MMS.1001": "Service instance not found.",
    "MMS.1014": "Build BIZ failed.",
    "MMS.1015": "Process BIZ failed.",
    "MMS.1016": "Process INDEX failed.",
    "ModelArts.4204": "Request api error! The API is not subscribed.",
}
#: MMS.0003's two documented messages; the emulator appends ``: <field>`` as the v2 examples do.
MMS_INVALID_PARAMETER = "Invalid parameter"
MMS_REQUIRED_PARAMETER = "Required parameter is empty"
MMS_SERVICE_NOT_FOUND = ("MMS.1001", V2_DOCUMENTED_CODES["MMS.1001"])


def mms_invalid(field: str) -> tuple[str, str]:
    """MMS.0003 for a field whose value the service refuses (type, range, a tag key it does not define)."""
    return "MMS.0003", f"{MMS_INVALID_PARAMETER}: {field}"


def mms_missing(field: str) -> tuple[str, str]:
    """MMS.0003 for a required field that is absent or empty."""
    return "MMS.0003", f"{MMS_REQUIRED_PARAMETER}: {field}"


#: Documented codes injectable as faults (``service_error_kinds`` / ``sequence``), by API: a v1 code is
#: only ever answered on a v1 route and a v2 code on a v2 route. None of them is produced otherwise.
SERVICE_FAULT_ERRORS: dict[str, tuple[str, str]] = {
    code: (code, message)
    for code, message in (
        IS_TOKEN_ABNORMAL,
        IS_HEADER_MISSING,
        IS_INTERNAL,
        IS_METHOD_FORBIDDEN,
        IS_TIMED_OUT,
        *(
            (code, V2_DOCUMENTED_CODES[code])
            for code in ("MMS.0001", "MMS.0002", "MMS.1014", "MMS.1015", "MMS.1016", "ModelArts.4204")
        ),
    )
}

# --- The emulator's own codes: cases the docs give no code for.
#: One table, the only place they are declared. Each lies outside the documented ranges (v1 IS.0001-IS.0016;
#: v2 MMS.0001-MMS.0003 and MMS.1001-MMS.1016), in a 9xxx block no documented table reaches, and says
#: in its message that it is the emulator's. No provider logic depends on them (tests/emulator checks
#: the provider with every one of them replaced by an unknown code). ``code -> (message, when)``.
EMULATOR_OWN_CODES: dict[str, tuple[str, str]] = {
    "IS.9001": (
        "The instance already exists. (emulator-specific code)",
        "v1 create: the name is already used in the project (also while it is DELETING)",
    ),
    "IS.9002": (
        "The image does not exist. (emulator-specific code)",
        "v1 delete/modify of a path not in the instance, or a search by such a path",
    ),
    "IS.9003": (
        "The tag is not defined on the instance. (emulator-specific code)",
        "v1 add/modify/search with a tag key the instance does not define",
    ),
    "MMS.9001": (
        "The item already exists. (emulator-specific code)",
        "v2 add without force of an item_id the service has",
    ),
    "MMS.9002": (
        "The item does not exist. (emulator-specific code)",
        "v2 update, or delete by item_id without force, of an item_id the service does not have",
    ),
}


def _own(code: str) -> tuple[str, str]:
    return code, EMULATOR_OWN_CODES[code][0]


IS_DUPLICATE_INSTANCE = _own("IS.9001")
IS_IMAGE_NOT_FOUND = _own("IS.9002")
IS_UNKNOWN_TAG = _own("IS.9003")
MMS_ITEM_EXISTS = _own("MMS.9001")
MMS_ITEM_NOT_FOUND = _own("MMS.9002")

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
