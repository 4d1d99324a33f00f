"""Reading an ``imagesearch`` Airflow connection into validated, typed settings.

Shared by the sync and async hooks, so both read a connection the same way. Extras may come from the
JSON connection form (typed) or the URI form (always strings); both are accepted.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_imagesearch import validation
from airflow_provider_imagesearch.errors import ImageSearchConfigError, ImageSearchValidationError
from airflow_provider_imagesearch.retry import RetryPolicy

AuthType = Literal["iam_password", "aksk", "token"]
AUTH_TYPES: tuple[AuthType, ...] = ("iam_password", "aksk", "token")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0


def default_endpoint(region: str) -> str:
    return f"https://imagesearch.{region}.myhuaweicloud.com"


def default_mms_endpoint(region: str) -> str:
    """The ImageSearch v2 (MMS) endpoint of a region."""
    return f"https://mms.{region}.myhuaweicloud.com"


def default_iam_endpoint(region: str) -> str:
    return f"https://iam.{region}.myhuaweicloud.com"


#: Default of the ``console_url`` extra. The console's URL scheme is not part of the API reference: this
#: is the service's console entry for the region, and the extra can point at any page instead.
DEFAULT_CONSOLE_URL = (
    "https://console.huaweicloud.com/imagesearch/?region={region}&locale=en-us"
    "#/imagesearch/instance?project_id={project_id}&instance_name={instance_name}"
)
CONSOLE_URL_FIELDS = ("region", "project_id", "instance_name")

#: What each service's endpoint is called in messages, and the setting that overrides it.
ENDPOINT_NAMES = {
    "imagesearch": ("ImageSearch v1 endpoint", "the Host field"),
    "mms": ("ImageSearch v2 (MMS) endpoint", "the 'mms_endpoint' extra"),
    "iam": ("IAM endpoint", "the 'iam_endpoint' extra"),
}


@dataclass(frozen=True)
class Credentials:
    """What the hook authenticates with. Secrets are kept out of ``repr``.

    :param auth_type: ``iam_password``, ``aksk`` or ``token``.
    :param user: IAM user name (iam_password).
    :param domain_name: account (domain) name (iam_password).
    :param password: IAM password (iam_password).
    :param access_key: AK (aksk).
    :param secret_key: SK (aksk).
    :param security_token: security token of temporary AK/SK (aksk, optional).
    :param token: ready-made token (token).
    """

    auth_type: AuthType
    user: str | None = None
    domain_name: str | None = None
    password: str | None = field(default=None, repr=False)
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.secret_key, self.security_token, self.token) if s]


@dataclass(frozen=True)
class ImageSearchSettings:
    """Everything a hook needs to make calls, from one connection.

    :param endpoint: ImageSearch base URL (scheme and host, optional port).
    :param iam_endpoint: IAM base URL, for password auth.
    :param region: region id, e.g. ``cn-north-4`` (also the IAM token scope).
    :param project_id: project the instances live in.
    :param credentials: how to authenticate.
    :param connect_timeout: seconds to open a connection.
    :param read_timeout: seconds to wait for a response.
    :param verify: TLS verification: True, False, or a CA bundle path.
    :param retry: the retry policy.
    :param instance_name: optional instance used by ``test_connection``.
    :param console_url: template of an instance's console page (``{region}``, ``{project_id}``,
        ``{instance_name}``), for the operators' extra link.
    :param mms_endpoint: ImageSearch v2 (MMS) base URL; None means the same as ``endpoint``.
    :param endpoint_sources: for each service (``imagesearch``, ``mms``, ``iam``), the setting its base
        URL came from: ``host``, ``region``, ``iam_endpoint``, ``mms_endpoint`` or ``default``; errors
        that reach no server name it (see :meth:`describe_endpoint`).
    """

    endpoint: str
    iam_endpoint: str
    region: str | None
    project_id: str | None
    credentials: Credentials
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    verify: bool | str = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    instance_name: str | None = None
    console_url: str = DEFAULT_CONSOLE_URL
    mms_endpoint: str | None = None
    # Not compared or hashed: it says where the endpoints came from, not where calls go.
    endpoint_sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def base_url(self, service: str) -> str:
        """The base URL of ``service``: ``imagesearch`` (v1), ``mms`` (v2) or ``iam``."""
        if service == "mms":
            return self.mms_endpoint or self.endpoint
        if service == "iam":
            return self.iam_endpoint
        return self.endpoint

    def describe_endpoint(self, service: str) -> str:
        """Which endpoint ``service`` uses and the connection setting that chose it, for error messages.

        E.g. "the IAM endpoint https://iam.cn-north-4.myhuaweicloud.com, derived from the 'region' extra
        (cn-north-4); set the 'iam_endpoint' extra to use another".
        """
        name, override = ENDPOINT_NAMES.get(service, ENDPOINT_NAMES["imagesearch"])
        url = self.base_url(service)
        source = self.endpoint_sources.get(service if service in ENDPOINT_NAMES else "imagesearch")
        if source == "region":
            origin = f"derived from the 'region' extra ({self.region}); set {override} to use another"
        elif source == "host":
            origin = "from the Host field"
            if service != "imagesearch":
                origin += f" (no 'region' extra, and {override} is empty)"
        elif source in ("iam_endpoint", "mms_endpoint"):
            origin = f"from the '{source}' extra"
        elif source == "default":
            origin = f"the global default (no 'region' extra, and {override} is empty)"
        else:
            origin = "from the hook's settings"
        return f"the {name} {url}, {origin}"

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def console_link(self, instance_name: str, project_id: str | None = None) -> str:
        """The console page of ``instance_name`` (see ``console_url``); values are URL-encoded."""
        from urllib.parse import quote

        values = {
            "region": self.region or "",
            "project_id": project_id or self.project_id or "",
            "instance_name": instance_name,
        }
        return self.console_url.format(**{k: quote(v, safe="") for k, v in values.items()})

    def require_project_id(self) -> str:
        if not self.project_id:
            raise ImageSearchConfigError(
                "No project_id: set the 'project_id' extra on the connection or pass project_id= to the hook"
            )
        return self.project_id


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def _boolean_word(value: object) -> bool | None:
    """True/False for a boolean or one of the words every boolean extra accepts, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _bool(extras: Mapping[str, Any], key: str, default: bool) -> bool:
    value = extras.get(key)
    if value is None or value == "":
        return default
    parsed = _boolean_word(value)
    if parsed is None:
        raise ImageSearchConfigError(
            f"Connection extra {key!r} must be true or false (or yes/no, on/off, 1/0), got {value!r}"
        )
    return parsed


def _verify(extras: Mapping[str, Any]) -> bool | str:
    """The ``verify`` extra: a boolean (any word :func:`_bool` accepts), or a CA bundle file or directory."""
    raw = extras.get("verify")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return True
    parsed = _boolean_word(raw)
    if parsed is not None:
        return parsed
    if not isinstance(raw, str):
        raise ImageSearchConfigError(
            f"Connection extra 'verify' must be true, false, or the path of a CA bundle file or directory, "
            f"got {type(raw).__name__}"
        )
    path = os.path.expanduser(raw.strip())
    if not os.path.exists(path):
        raise ImageSearchConfigError(
            f"Connection extra 'verify' is neither a boolean nor an existing CA bundle file or directory: "
            f"{raw!r}"
        )
    return path


def _number(
    extras: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0, exclusive: bool = False
) -> float:
    """A number extra >= ``minimum`` (> ``minimum`` when ``exclusive``), as the connection form's schema says."""
    value = extras.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ImageSearchConfigError(f"Connection extra {key!r} must be a number, got {value!r}") from None
    in_range = number > minimum if exclusive else number >= minimum
    if isinstance(value, bool) or not in_range or not math.isfinite(number):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise ImageSearchConfigError(f"Connection extra {key!r} must be a number {bound}, got {value!r}")
    return number


def _str(extras: Mapping[str, Any], key: str) -> str | None:
    value = extras.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ImageSearchConfigError(f"Connection extra {key!r} must be a string")
    return value


def _console_url(extras: Mapping[str, Any]) -> str:
    template = _str(extras, "console_url") or DEFAULT_CONSOLE_URL
    import string

    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        names = {"?"}
    if not template.startswith("https://") or not names <= set(CONSOLE_URL_FIELDS):
        raise ImageSearchConfigError(
            "Connection extra 'console_url' must be an https:// URL whose only placeholders are "
            f"{{region}}, {{project_id}} and {{instance_name}}, got {redact_url(template)!r}"
        )
    return template


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(raw: str) -> str:
    """``raw`` with any ``user:password@`` part and query string replaced, safe to put in a message.

    Everything up to the last ``@`` goes: a password may hold ``?``, ``/`` or ``#``, and showing less of
    a URL is better than showing part of a secret.
    """
    scheme, sep, rest = raw.strip().rpartition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    rest, query, _ = rest.partition("?")
    return f"{scheme}{sep}{rest}{'?***' if query else ''}"


def normalise_endpoint(raw: str, port: int | None, *, field_name: str, allow_insecure: bool) -> str:
    """``host``, ``host:port`` or a URL into ``scheme://host[:port]``; refuse plain HTTP off loopback.

    Error messages show the value with any credentials and query string redacted.
    """
    text = raw.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    shown = redact_url(raw)
    try:
        parts = urlsplit(text)
        hostname, url_port = parts.hostname, parts.port
    except ValueError:
        raise ImageSearchConfigError(f"{field_name} is not a valid URL: {shown!r}") from None
    if parts.username or parts.password:
        raise ImageSearchConfigError(
            f"{field_name} must not carry credentials (user:password@): put them in the login and "
            f"password fields; got {shown!r}"
        )
    if parts.scheme not in ("http", "https") or not hostname:
        raise ImageSearchConfigError(f"{field_name} must be an https:// URL or a host name, got {shown!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ImageSearchConfigError(f"{field_name} must have no path or query, got {shown!r}")
    # The scheme's default port is left out, as HTTP clients and Huawei's SDK leave it out of the Host
    # header that AK/SK signatures cover (the connection form asks for 443 as a UI workaround).
    default_port = 443 if parts.scheme == "https" else 80
    chosen_port = url_port if url_port is not None else port
    netloc = hostname if ":" not in hostname else f"[{hostname}]"
    if chosen_port and chosen_port != default_port:
        netloc = f"{netloc}:{chosen_port}"
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(hostname):
        raise ImageSearchConfigError(
            f"{field_name} {parts.scheme}://{netloc} is plain HTTP: credentials would travel unencrypted. "
            "Use https://, or set the connection extra 'allow_insecure': true if this is intended "
            "(plain HTTP is accepted without it only on loopback addresses)."
        )
    return f"{parts.scheme}://{netloc}"


def _infer_auth_type(login: str | None, password: str | None, extras: Mapping[str, Any]) -> AuthType:
    explicit = _str(extras, "auth_type")
    if explicit is not None:
        for auth_type in AUTH_TYPES:
            if explicit == auth_type:
                return auth_type
        raise ImageSearchConfigError(
            f"Connection extra 'auth_type' must be one of {', '.join(AUTH_TYPES)}, got {explicit!r}"
        )
    has_token = bool(_str(extras, "token"))
    has_domain = bool(_str(extras, "domain_name"))
    if has_token and not (login or has_domain):
        return "token"
    if has_domain and login and password and not has_token:
        return "iam_password"
    if login and password and not has_token and not has_domain:
        return "aksk"
    if password and not login and not has_domain and not has_token:
        return "token"
    raise ImageSearchConfigError(
        "Cannot tell how to authenticate from this connection. Set the extra 'auth_type' to one of "
        "iam_password (login = IAM user, password, extra domain_name), aksk (login = access key, "
        "password = secret key) or token (extra token, or the password field)."
    )


def _credentials(login: str | None, password: str | None, extras: Mapping[str, Any]) -> Credentials:
    auth_type = _infer_auth_type(login, password, extras)
    if auth_type == "iam_password":
        domain = _str(extras, "domain_name")
        missing = [n for n, v in (("login", login), ("password", password), ("domain_name", domain)) if not v]
        if missing:
            raise ImageSearchConfigError(
                f"auth_type iam_password needs {', '.join(missing)} on the connection"
            )
        return Credentials(auth_type, user=login, domain_name=domain, password=password)
    if auth_type == "aksk":
        if not login or not password:
            raise ImageSearchConfigError(
                "auth_type aksk needs login (access key) and password (secret key) on the connection"
            )
        return Credentials(
            auth_type, access_key=login, secret_key=password, security_token=_str(extras, "security_token")
        )
    token = _str(extras, "token") or password
    if not token:
        raise ImageSearchConfigError("auth_type token needs the extra 'token' (or the password field)")
    return Credentials(auth_type, token=token)


def settings_from_connection(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extras: Mapping[str, Any],
    region: str | None = None,
    project_id: str | None = None,
) -> ImageSearchSettings:
    """Build settings from a connection's fields; ``region``/``project_id`` override the extras."""
    try:
        region = region or _str(extras, "region")
        if region is not None:
            validation.region(region)
        project_id = project_id or _str(extras, "project_id")
        if project_id is not None:
            validation.project_id(project_id)
        instance_name = _str(extras, "instance_name")
        if instance_name is not None:
            validation.instance_name(instance_name, "instance_name extra")
        console_url = _console_url(extras)
    except ImageSearchValidationError as error:
        raise ImageSearchConfigError(f"Connection: {error}") from None

    allow_insecure = _bool(extras, "allow_insecure", False)
    sources: dict[str, str] = {}
    if host:
        endpoint = normalise_endpoint(host, port, field_name="host", allow_insecure=allow_insecure)
        sources["imagesearch"] = "host"
    elif region:
        endpoint = default_endpoint(region)
        sources["imagesearch"] = "region"
    else:
        raise ImageSearchConfigError(
            "Set the 'region' extra (e.g. cn-north-4) or the host (the endpoint URL)"
        )

    iam_raw = _str(extras, "iam_endpoint")
    if iam_raw:
        iam_endpoint = normalise_endpoint(
            iam_raw, None, field_name="iam_endpoint", allow_insecure=allow_insecure
        )
        sources["iam"] = "iam_endpoint"
    elif region:
        iam_endpoint = default_iam_endpoint(region)
        sources["iam"] = "region"
    else:
        iam_endpoint = "https://iam.myhuaweicloud.com"
        sources["iam"] = "default"

    # v2 (MMS) lives on its own host: the extra, else the region's, else the host (one gateway for both).
    mms_raw = _str(extras, "mms_endpoint")
    if mms_raw:
        mms_endpoint = normalise_endpoint(
            mms_raw, None, field_name="mms_endpoint", allow_insecure=allow_insecure
        )
        sources["mms"] = "mms_endpoint"
    elif region:
        mms_endpoint = default_mms_endpoint(region)
        sources["mms"] = "region"
    else:
        mms_endpoint = endpoint
        sources["mms"] = "host"

    credentials = _credentials(login, password, extras)
    if credentials.auth_type == "iam_password" and not (region or _str(extras, "project_id")):
        raise ImageSearchConfigError("auth_type iam_password needs the 'region' extra to scope the IAM token")

    verify = _verify(extras)
    if verify is False and not allow_insecure:
        raise ImageSearchConfigError(
            "Connection extra 'verify': false turns off TLS certificate checks; "
            "set 'allow_insecure': true as well to confirm."
        )

    timeout = _number(extras, "timeout", 0.0, exclusive=True)
    retry = RetryPolicy(
        max_attempts=int(_number(extras, "max_attempts", RetryPolicy.max_attempts, minimum=1)),
        backoff_initial=_number(extras, "backoff_initial", RetryPolicy.backoff_initial),
        backoff_max=_number(extras, "backoff_max", RetryPolicy.backoff_max),
        max_elapsed=_number(extras, "retry_max_elapsed", RetryPolicy.max_elapsed),
        max_retry_after=_number(extras, "max_retry_after", RetryPolicy.max_retry_after),
    )
    return ImageSearchSettings(
        endpoint=endpoint,
        iam_endpoint=iam_endpoint,
        region=region,
        project_id=project_id,
        credentials=credentials,
        connect_timeout=_number(
            extras, "connect_timeout", timeout or DEFAULT_CONNECT_TIMEOUT, minimum=0, exclusive=True
        ),
        read_timeout=_number(
            extras, "read_timeout", timeout or DEFAULT_READ_TIMEOUT, minimum=0, exclusive=True
        ),
        verify=verify,
        retry=retry,
        instance_name=instance_name,
        console_url=console_url,
        mms_endpoint=mms_endpoint,
        endpoint_sources=sources,
    )
