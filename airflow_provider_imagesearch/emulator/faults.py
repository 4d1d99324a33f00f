"""Fault injection: which requests fail, and how.

A :class:`FaultConfig` is plain data (JSON-serialisable, merged from partial updates by the control
endpoint); a :class:`FaultInjector` owns the mutable parts (the pending ``sequence``, the seeded RNG,
the token-expiry clock) and decides, once per request, which fault (if any) that request gets.

Decision order for a request inside the configured ``scope``: the next entry of ``sequence`` if any is
left (``"ok"`` means no fault), otherwise the random rates in a fixed order (drop, 5xx, 429, 403, service
error, drop_after, slow, malformed), each drawn from one ``random.Random(random_seed)``, so a run is
reproducible as long as the requests arrive in the same order (a rate of 0 draws nothing).
``latency_seconds`` is added to every in-scope request.

How each fault behaves:

* ``500_json`` / ``502_html`` / ``503_json`` / ``429`` / ``403`` / ``drop``: answered (or, for ``drop``,
  the connection closed) *before* authentication and before the request touches any state, like a gateway
  failure in front of the service.
* service errors, documented codes the emulator never produces on its own: v1 ``IS.0004`` / ``IS.0005`` /
  ``IS.0009`` / ``IS.0011`` / ``IS.0012``, v2 ``MMS.0001`` / ``MMS.0002`` / ``MMS.1014`` / ``MMS.1015`` /
  ``MMS.1016`` / ``ModelArts.4204``: HTTP 400 ``{"error_code", "error_msg"}`` answered by the "service"
  *after* the gateway has authenticated the request and *without* processing it (no state changes, like
  the gateway faults): an internal error or a timeout that happened before the operation took effect. A
  v1 code is only answered on a v1 route and a v2 code on a v2 route: ``service_error_rate`` draws among
  the given kinds of the request's API, and a ``sequence`` entry of the other API is not applied. A request
  that fails authentication gets the gateway's answer instead, and a service error drawn for an IAM route
  (``scope`` ``iam``/``all``) is not applied; none of these is counted as a fault.
* ``drop_after``: the request is processed normally (authentication, state changes), then the connection
  is closed without sending the answer: "the delete took effect but its answer was lost".
* ``503_after`` (in ``sequence`` only): the request is processed normally, then answered 503 APIGW.0613
  instead of its result: "the create reached the service, the gateway reported a failure".
* ``slow``: the request waits ``slow_seconds`` first; if the client hung up meanwhile it is never processed,
  otherwise it is processed and answered normally (late).
* malformed kinds: the request is processed normally (state changes happen), then a 2xx body is replaced by
  the malformed one (status stays 2xx, except ``html_502`` which becomes a 502 HTML page). A malformed fault
  drawn for a non-2xx answer is not applied and not counted.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

ERROR_5XX_KINDS = ("500_json", "502_html", "503_json")
MALFORMED_KINDS = (
    "html_502",
    "truncated_json",
    "json_list",
    "missing_fields",
    "wrong_types",
    "unknown_status",
    "empty_body",
)
#: Documented ImageSearch error codes injectable as faults, named by their codes: v1's, then v2's.
V1_SERVICE_ERROR_KINDS = ("IS.0004", "IS.0005", "IS.0009", "IS.0011", "IS.0012")
V2_SERVICE_ERROR_KINDS = ("MMS.0001", "MMS.0002", "MMS.1014", "MMS.1015", "MMS.1016", "ModelArts.4204")
SERVICE_ERROR_KINDS = V1_SERVICE_ERROR_KINDS + V2_SERVICE_ERROR_KINDS


def service_error_api(kind: str) -> str:
    """``v1`` or ``v2``: the API whose routes a service error kind is answered on."""
    return "v1" if kind.startswith("IS.") else "v2"


GATEWAY_FAULTS = frozenset({*ERROR_5XX_KINDS, "429", "403", "drop"})
SERVICE_FAULTS = frozenset(SERVICE_ERROR_KINDS)
#: Processed, then the connection is closed without the answer.
DROP_AFTER = "drop_after"
UNAVAILABLE_AFTER = "503_after"
SEQUENCE_NAMES = frozenset(
    {"ok", "slow", DROP_AFTER, UNAVAILABLE_AFTER, *GATEWAY_FAULTS, *SERVICE_FAULTS, *MALFORMED_KINDS}
)
SCOPES = ("api", "iam", "all")
#: Status reported for malformed ``unknown_status`` bodies: not in the documented enum.
UNKNOWN_STATUS_VALUE = "EMULATOR_UNKNOWN_STATUS"
#: Fields removed by ``missing_fields`` (whichever the body has).
_ESSENTIAL_FIELDS = ("status", "instanceName", "result", "exist", "count", "token")


class FaultConfigError(ValueError):
    """A fault configuration was refused (unknown field, wrong type, out-of-range value)."""


@dataclass
class FaultConfig:
    """What to break, and how often. All rates are probabilities in [0, 1] and default to 0."""

    error_5xx_rate: float = 0.0
    error_5xx_kinds: list[str] = field(default_factory=lambda: list(ERROR_5XX_KINDS))
    throttle_429_rate: float = 0.0
    retry_after: str = "1"
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    latency_seconds: float = 0.0
    forbidden_rate: float = 0.0
    service_error_rate: float = 0.0
    service_error_kinds: list[str] = field(default_factory=lambda: list(SERVICE_ERROR_KINDS))
    drop_after_rate: float = 0.0
    malformed_rate: float = 0.0
    malformed_kinds: list[str] = field(default_factory=lambda: list(MALFORMED_KINDS))
    token_expiry_interval: float | None = None
    sequence: list[str] = field(default_factory=list)
    scope: str = "api"
    random_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        return cls().merged(data)

    def merged(self, update: dict[str, Any]) -> FaultConfig:
        """A new, validated config: ``self`` with the fields of ``update`` replaced.

        ``{"reset": true}`` in ``update`` starts from the defaults instead of ``self``.
        """
        if not isinstance(update, dict):
            raise FaultConfigError("fault config must be a JSON object")
        update = dict(update)
        base = FaultConfig() if update.pop("reset", False) is True else self
        known = {f.name for f in dataclasses.fields(FaultConfig)}
        unknown = sorted(set(update) - known)
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s): {', '.join(unknown)}")
        values = base.to_dict()
        values.update(update)
        return _validated(values)


def _rate(values: dict[str, Any], name: str) -> float:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise FaultConfigError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _seconds(values: dict[str, Any], name: str) -> float:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _names(values: dict[str, Any], name: str, allowed: frozenset[str] | tuple[str, ...]) -> list[str]:
    value = values[name]
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FaultConfigError(f"{name} must be a list of names, got {value!r}")
    bad = [v for v in value if v not in allowed]
    if bad:
        raise FaultConfigError(f"{name}: unknown name(s) {bad}; allowed: {sorted(allowed)}")
    return list(value)


def _validated(values: dict[str, Any]) -> FaultConfig:
    retry_after = values["retry_after"]
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        retry_after = str(retry_after)
    if not isinstance(retry_after, str) or not retry_after.strip():
        raise FaultConfigError(f"retry_after must be a header value string, got {retry_after!r}")
    interval = values["token_expiry_interval"]
    if interval is not None:
        interval = _seconds(values, "token_expiry_interval") or None
    scope = values["scope"]
    if scope not in SCOPES:
        raise FaultConfigError(f"scope must be one of {SCOPES}, got {scope!r}")
    seed = values["random_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise FaultConfigError(f"random_seed must be an integer, got {seed!r}")
    config = FaultConfig(
        error_5xx_rate=_rate(values, "error_5xx_rate"),
        error_5xx_kinds=_names(values, "error_5xx_kinds", ERROR_5XX_KINDS),
        throttle_429_rate=_rate(values, "throttle_429_rate"),
        retry_after=retry_after.strip(),
        drop_rate=_rate(values, "drop_rate"),
        slow_rate=_rate(values, "slow_rate"),
        slow_seconds=_seconds(values, "slow_seconds"),
        latency_seconds=_seconds(values, "latency_seconds"),
        forbidden_rate=_rate(values, "forbidden_rate"),
        service_error_rate=_rate(values, "service_error_rate"),
        service_error_kinds=_names(values, "service_error_kinds", SERVICE_ERROR_KINDS),
        drop_after_rate=_rate(values, "drop_after_rate"),
        malformed_rate=_rate(values, "malformed_rate"),
        malformed_kinds=_names(values, "malformed_kinds", MALFORMED_KINDS),
        token_expiry_interval=interval,
        sequence=_names(values, "sequence", SEQUENCE_NAMES),
        scope=scope,
        random_seed=seed,
    )
    if config.error_5xx_rate and not config.error_5xx_kinds:
        raise FaultConfigError("error_5xx_rate > 0 needs at least one of error_5xx_kinds")
    if config.service_error_rate and not config.service_error_kinds:
        raise FaultConfigError("service_error_rate > 0 needs at least one of service_error_kinds")
    if config.malformed_rate and not config.malformed_kinds:
        raise FaultConfigError("malformed_rate > 0 needs at least one of malformed_kinds")
    return config


class FaultInjector:
    """Per-server fault state. Only ever used from the server's event loop thread."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = FaultConfig()
        self._sequence: collections.deque[str] = collections.deque()
        self._rng = random.Random(0)
        self._expiry_started = 0.0
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Install ``config``: restarts the sequence, the RNG and (if the interval changed) the expiry clock."""
        old_interval = self.config.token_expiry_interval
        self.config = config
        self._sequence = collections.deque(config.sequence)
        self._rng = random.Random(config.random_seed)
        if config.token_expiry_interval != old_interval or not self._expiry_started:
            self._expiry_started = time.time()

    def snapshot(self) -> dict[str, Any]:
        """The config as JSON, with ``sequence`` showing only the entries not yet consumed."""
        data = self.config.to_dict()
        data["sequence"] = list(self._sequence)
        return data

    def in_scope(self, scope: str) -> bool:
        wanted = self.config.scope
        return wanted == "all" or wanted == scope

    def choose(self, api: str | None = None) -> str | None:
        """The fault for the next in-scope request, or None.

        ``api`` (``v1``/``v2``) narrows a random service error to the kinds of that API (None: any kind).
        """
        if self._sequence:
            name = self._sequence.popleft()
            return None if name == "ok" else name
        cfg = self.config
        rng = self._rng
        if cfg.drop_rate and rng.random() < cfg.drop_rate:
            return "drop"
        if cfg.error_5xx_rate and rng.random() < cfg.error_5xx_rate:
            return rng.choice(cfg.error_5xx_kinds)
        if cfg.throttle_429_rate and rng.random() < cfg.throttle_429_rate:
            return "429"
        if cfg.forbidden_rate and rng.random() < cfg.forbidden_rate:
            return "403"
        if cfg.service_error_rate and rng.random() < cfg.service_error_rate:
            kinds = [k for k in cfg.service_error_kinds if api is None or service_error_api(k) == api]
            return rng.choice(kinds) if kinds else None
        if cfg.drop_after_rate and rng.random() < cfg.drop_after_rate:
            return DROP_AFTER
        if cfg.slow_rate and rng.random() < cfg.slow_rate:
            return "slow"
        if cfg.malformed_rate and rng.random() < cfg.malformed_rate:
            return rng.choice(cfg.malformed_kinds)
        return None

    # --- token expiry clock -------------------------------------------------------------------------
    def expiry_period(self, moment: float) -> int:
        """Index of the ``token_expiry_interval`` period containing ``moment`` (0 when disabled)."""
        interval = self.config.token_expiry_interval
        if not interval or moment < self._expiry_started:
            return 0
        return int((moment - self._expiry_started) // interval)

    def forced_expiries(self, now: float) -> int:
        """How many interval boundaries have passed (each one expired every issued token)."""
        return self.expiry_period(now)


def malform(kind: str, body: Any) -> tuple[int, bytes, str] | None:
    """Turn a would-be 2xx JSON ``body`` into ``(status, bytes, content_type)``; None if not applicable."""
    json_type = "application/json;charset=UTF-8"
    if kind == "html_502":
        from airflow_provider_imagesearch.emulator.constants import BAD_GATEWAY_HTML

        return 502, BAD_GATEWAY_HTML.encode(), "text/html"
    if kind == "empty_body":
        return 200, b"", json_type
    encoded = json.dumps(body, separators=(",", ":")).encode()
    if kind == "truncated_json":
        return 200, encoded[: max(1, len(encoded) // 2)], json_type
    if kind == "json_list":
        return 200, b"[" + encoded + b"]", json_type
    if not isinstance(body, dict):
        return None
    if kind == "missing_fields":
        stripped = {k: v for k, v in body.items() if k not in _ESSENTIAL_FIELDS}
        return 200, json.dumps(stripped, separators=(",", ":")).encode(), json_type
    if kind == "wrong_types":
        flipped = {k: _wrong_type(v) for k, v in body.items()}
        return 200, json.dumps(flipped, separators=(",", ":")).encode(), json_type
    if kind == "unknown_status":
        if "status" not in body:
            return None
        changed = dict(body, status=UNKNOWN_STATUS_VALUE)
        return 200, json.dumps(changed, separators=(",", ":")).encode(), json_type
    return None


def _wrong_type(value: Any) -> Any:
    """A value of a different JSON type than ``value`` (so a strict parser must reject it)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return 12345
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return {"items": value}
    if isinstance(value, dict):
        return [value]
    return 0
