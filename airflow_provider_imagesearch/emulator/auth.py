"""API Gateway authentication of v1 requests: IAM token or AK/SK signature.

Checks, in the order the gateway is assumed to run them (the order is a guess; the error bodies are not):

* ``X-Auth-Token`` present: unknown token -> 401 APIGW.0301 ("decrypt token fail"); expired (lifetime,
  ``token_expiry_interval`` fault, or revoked by ``/_emulator/expire-tokens``) -> 401 APIGW.0307.
* else ``Authorization: SDK-HMAC-SHA256 ...``: malformed or unknown AK -> 401 APIGW.0301 ("Get secretKey
  failed"); temporary AK without the matching ``X-Security-Token`` -> 401 APIGW.0301; ``SignedHeaders``
  not naming both ``host`` and ``x-sdk-date`` (the APIG scheme requires them; the official SDK signs every
  header it sends), ``X-Sdk-Date`` missing/unparseable or bad signature -> 401 APIGW.0301 ("verify aksk
  signature fail"); date more than 15 minutes off -> 401 APIGW.0301 ("signature expired"). The signature
  is checked against the headers exactly as received (including ``Host``), with
  :func:`~airflow_provider_imagesearch.signing.verify_signature` (the tests check that function, and the
  provider's signatures, against ``huaweicloudsdkcore``'s ``Signer``).
* neither -> 401 APIGW.0301.

Project checks (after authentication): a project id the emulator does not have -> 403 APIGW.0310; a token
scoped to another project (or not project-scoped) -> 403 APIGW.0302. Ready tokens and AK/SK fit every project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.faults import FaultInjector
from airflow_provider_imagesearch.emulator.state import State, Token
from airflow_provider_imagesearch.emulator.wire import Request

GatewayError = tuple[int, str, str]
#: A signature that does not cover these could be replayed against another host or at another time.
REQUIRED_SIGNED_HEADERS = frozenset({"host", "x-sdk-date"})


@dataclass
class AuthOutcome:
    """``error`` is None on success; ``expired`` marks APIGW.0307 answers (counted as token expiries)."""

    kind: str
    error: GatewayError | None = None
    token: Token | None = None
    expired: bool = False


def auth_kind(request: Request) -> str:
    if "x-auth-token" in request.headers:
        return "token"
    if "authorization" in request.headers:
        return "aksk"
    return "none"


def token_expired(token: Token, injector: FaultInjector, now: float) -> bool:
    if token.revoked:
        return True
    if token.ready:
        return False
    if token.expires_at is not None and now >= token.expires_at:
        return True
    return injector.expiry_period(now) > injector.expiry_period(token.issued_at)


def check_token(value: str, state: State, injector: FaultInjector, now: float) -> AuthOutcome:
    token = state.tokens.get(value.strip())
    if token is None:
        return AuthOutcome("token", c.GW_BAD_TOKEN)
    if token_expired(token, injector, now):
        return AuthOutcome("token", c.GW_TOKEN_EXPIRED, token, expired=True)
    return AuthOutcome("token", None, token)


def _check_signature(request: Request, state: State, now: float) -> AuthOutcome:
    parsed = signing.parse_authorization(request.headers["authorization"])
    if parsed is None or not REQUIRED_SIGNED_HEADERS.issubset(parsed.signed_headers):
        return AuthOutcome("aksk", c.GW_BAD_SIGNATURE)
    key = state.access_keys.get(parsed.access_key)
    if key is None:
        return AuthOutcome("aksk", c.GW_UNKNOWN_AK)
    if key.security_token is not None and request.headers.get("x-security-token") != key.security_token:
        return AuthOutcome("aksk", c.GW_BAD_SECURITY_TOKEN)
    sdk_date = request.headers.get(signing.DATE_HEADER.lower())
    try:
        signed_at = datetime.strptime(sdk_date or "", signing.DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return AuthOutcome("aksk", c.GW_BAD_SIGNATURE)
    if abs(signed_at.timestamp() - now) > c.MAX_CLOCK_SKEW_S:
        return AuthOutcome("aksk", c.GW_SIGNATURE_EXPIRED)
    valid = signing.verify_signature(
        secret_key=key.secret_key,
        authorization=parsed,
        method=request.method,
        path=request.path,
        query=parse_qsl(request.query, keep_blank_values=True),
        headers=request.headers,
        body=request.body,
    )
    return AuthOutcome("aksk", None if valid else c.GW_BAD_SIGNATURE)


def authenticate(
    request: Request, project_id: str, state: State, injector: FaultInjector, now: float
) -> AuthOutcome:
    """Authenticate a v1 request for ``project_id`` (the path segment)."""
    kind = auth_kind(request)
    if kind == "token":
        outcome = check_token(request.headers["x-auth-token"], state, injector, now)
    elif kind == "aksk":
        outcome = _check_signature(request, state, now)
    else:
        return AuthOutcome("none", c.GW_NO_AUTH)
    if outcome.error is not None:
        return outcome
    if project_id not in state.project_regions:
        outcome.error = c.GW_PROJECT_UNAVAILABLE
    elif outcome.token is not None and not outcome.token.ready and outcome.token.project_id != project_id:
        outcome.error = c.GW_FORBIDDEN
    return outcome
