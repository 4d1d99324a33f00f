"""The AK/SK signer against the published example and against Huawei's own SDK signer."""

from __future__ import annotations

import hashlib
import random
import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_imagesearch import signing

# From Huawei's API Request Signing Guide ("Constructing a Standard Request" / "Creating a To-Be-Signed
# String"): the VPC query example and its published hashed canonical request.
EXAMPLE_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
EXAMPLE_QUERY = [("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")]
EXAMPLE_HEADERS = {
    "Content-Type": "application/json",
    "Host": "service.region.example.com",
    "X-Sdk-Date": "20191115T033655Z",
}
EXAMPLE_HASHED_CANONICAL = "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"


def test_published_example_canonical_request_and_string_to_sign() -> None:
    names = signing.signed_header_names(EXAMPLE_HEADERS)
    assert names == ["content-type", "host", "x-sdk-date"]
    canonical = signing.canonical_request("GET", EXAMPLE_PATH, EXAMPLE_QUERY, EXAMPLE_HEADERS, names, b"")
    assert canonical.splitlines()[1] == EXAMPLE_PATH + "/"
    assert canonical.splitlines()[2] == "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
    assert hashlib.sha256(canonical.encode()).hexdigest() == EXAMPLE_HASHED_CANONICAL
    assert signing.string_to_sign(canonical, "20191115T033655Z") == (
        f"SDK-HMAC-SHA256\n20191115T033655Z\n{EXAMPLE_HASHED_CANONICAL}"
    )


def test_authorization_header_format_and_verification_round_trip() -> None:
    headers = signing.sign_headers(
        access_key="QTWAOYTTINDUT2QVKYUC",
        secret_key="MFyfvK41ba2giqM7**********KGpownRZlmVmHc",
        method="GET",
        host="service.region.example.com",
        path=EXAMPLE_PATH,
        query=EXAMPLE_QUERY,
        headers={"Content-Type": "application/json"},
        now=datetime(2019, 11, 15, 3, 36, 55, tzinfo=UTC),
    )
    assert headers["X-Sdk-Date"] == "20191115T033655Z"
    auth = signing.parse_authorization(headers["Authorization"])
    assert auth is not None
    assert auth.access_key == "QTWAOYTTINDUT2QVKYUC"
    assert auth.signed_headers == ["content-type", "host", "x-sdk-date"]
    assert headers["Authorization"].startswith(
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature="
    )
    kwargs = {"method": "GET", "path": EXAMPLE_PATH, "query": EXAMPLE_QUERY, "headers": headers, "body": b""}
    assert signing.verify_signature(
        secret_key="MFyfvK41ba2giqM7**********KGpownRZlmVmHc", authorization=auth, **kwargs
    )
    assert not signing.verify_signature(secret_key="wrong", authorization=auth, **kwargs)
    tampered = dict(kwargs, path=EXAMPLE_PATH + "x")
    assert not signing.verify_signature(
        secret_key="MFyfvK41ba2giqM7**********KGpownRZlmVmHc", authorization=auth, **tampered
    )


@pytest.mark.parametrize("value", ["", "Bearer x", "SDK-HMAC-SHA256 Access=a", "SDK-HMAC-SHA256"])
def test_malformed_authorization_is_none(value: str) -> None:
    assert signing.parse_authorization(value) is None


def test_canonical_uri_encodes_each_segment_and_ends_with_slash() -> None:
    assert signing.canonical_uri("/v1/p/ab c/image") == "/v1/p/ab%20c/image/"
    assert signing.canonical_uri("/v1/p/a~b/") == "/v1/p/a~b/"


def _sdk_sign(
    method: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    ak: str,
    sk: str,
) -> str:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    request = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=path,
        query_params=list(query),
        header_params=dict(headers),
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return str(request.header_params["Authorization"])


_SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-_.~ %+=@", min_size=1, max_size=12)
_HEADER_VALUE = st.text(alphabet=string.ascii_letters + string.digits + " -_;=/.", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    segments=st.lists(_SEGMENT, min_size=1, max_size=5),
    query=st.lists(st.tuples(_SEGMENT, _SEGMENT), max_size=4, unique_by=lambda kv: kv[0]),
    extra_headers=st.dictionaries(
        st.sampled_from(["X-Project-Id", "Content-Type", "X-Security-Token", "Accept", "X-Custom"]),
        _HEADER_VALUE,
        max_size=4,
    ),
    body=st.binary(max_size=200),
    port=st.sampled_from(["", ":8443", ":31000"]),
)
def test_matches_huaweicloudsdkcore_signer(
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    extra_headers: dict[str, str],
    body: bytes,
    port: str,
) -> None:
    rng = random.Random(hash((method, tuple(segments))))
    ak = "".join(rng.choices(string.ascii_uppercase + string.digits, k=20))
    sk = "".join(rng.choices(string.ascii_letters + string.digits, k=40))
    host = f"imagesearch.cn-north-4.myhuaweicloud.com{port}"
    path = "/" + "/".join(segments)
    # JSON content type so the SDK hashes the body instead of sending UNSIGNED-PAYLOAD.
    headers = {**extra_headers, "Content-Type": "application/json"}
    date = "20261127T101010Z"
    ours = signing.sign_headers(
        access_key=ak,
        secret_key=sk,
        method=method,
        host=host,
        path=path,
        headers={**headers, "X-Sdk-Date": date},
        body=body,
        query=query,
    )
    theirs = _sdk_sign(method, host, path, query, {**headers, "X-Sdk-Date": date}, body, ak, sk)
    assert ours["Authorization"] == theirs
