"""The token cache shared by every hook of a process, and the credentials each request carries.

Protected: one fetch per credential however many threads or coroutines (of one or several event loops)
ask at once; a token past its renewal time is fetched again; a failed fetch leaves nothing behind; a
rejected token is dropped only if it is still the cached one (threads racing on a rejection renew once).
Each request carries its credentials as the gateway checks them: a ready token or an IAM token in
``X-Auth-Token``, or an AK/SK signature over the method, host, path and body (with the security token of
temporary credentials), for the service the request goes to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest

from airflow_provider_imagesearch import signing
from airflow_provider_imagesearch.api import ApiRequest
from airflow_provider_imagesearch.auth import Authenticator, IssuedToken, TokenCache
from airflow_provider_imagesearch.settings import Credentials, ImageSearchSettings

PROJECT = "0b5e4c3a2f1d4e6a8c7b9d0e1f2a3b4c"


def _token(value: str, lifetime: float = 3600.0, renew_in: float | None = None) -> IssuedToken:
    now = time.monotonic()
    return IssuedToken(
        value=value,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        renew_after=now + (lifetime if renew_in is None else renew_in),
        expires_monotonic=now + lifetime,
    )


class Fetcher:
    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail

    def __call__(self) -> IssuedToken:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("IAM is down")
        return _token(f"tok-{self.calls}")

    async def afetch(self) -> IssuedToken:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("IAM is down")
        return _token(f"tok-{self.calls}")


def test_threads_asking_at_once_share_one_fetch() -> None:
    cache, fetch = TokenCache(), Fetcher(delay=0.05)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("k", fetch))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert (got, fetch.calls, cache.fetches) == (["tok-1"] * 6, 1, 1)
    assert cache.get("other", fetch) == "tok-2"  # another credential, another token


def test_coroutines_of_one_and_of_two_loops_share_one_fetch() -> None:
    cache, fetch = TokenCache(), Fetcher(delay=0.05)

    async def many() -> list[str]:
        return list(await asyncio.gather(*(cache.aget("k", fetch.afetch) for _ in range(5))))

    assert asyncio.run(many()) == ["tok-1"] * 5
    assert asyncio.run(many()) == ["tok-1"] * 5  # a second loop reuses the cached token
    assert fetch.calls == 1

    results: list[list[str]] = []
    cache2, fetch2 = TokenCache(), Fetcher(delay=0.1)
    threads = [
        threading.Thread(target=lambda: results.append(asyncio.run(many2(cache2, fetch2)))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [["tok-1"] * 3] * 2
    assert fetch2.calls == 1


async def many2(cache: TokenCache, fetch: Fetcher) -> list[str]:
    return list(await asyncio.gather(*(cache.aget("k", fetch.afetch) for _ in range(3))))


def test_a_sync_caller_waits_for_an_async_fetch_in_flight() -> None:
    cache, fetch = TokenCache(), Fetcher(delay=0.2)
    got: list[str] = []

    async def scenario() -> str:
        task = asyncio.create_task(cache.aget("k", fetch.afetch))
        await asyncio.sleep(0.05)
        thread = threading.Thread(target=lambda: got.append(cache.get("k", Fetcher())))
        thread.start()
        value = await task
        await asyncio.to_thread(thread.join, 10)
        return value

    assert asyncio.run(scenario()) == "tok-1"
    assert got == ["tok-1"]


def test_a_token_past_its_renewal_time_is_fetched_again_sync_and_async() -> None:
    cache = TokenCache()
    cache.put("k", _token("old", renew_in=-1))
    assert cache.get("k", lambda: _token("new")) == "new"
    cache.put("a", _token("old", renew_in=-1))

    async def fetch() -> IssuedToken:
        return _token("new-a")

    assert asyncio.run(cache.aget("a", fetch)) == "new-a"
    assert cache.fetches == 4  # two puts and two fetches


def test_a_failed_fetch_stores_nothing_and_the_next_call_fetches_again() -> None:
    cache, fetch = TokenCache(), Fetcher(fail=1)
    with pytest.raises(RuntimeError, match="IAM is down"):
        cache.get("k", fetch)
    assert (cache.get("k", fetch), cache.fetches) == ("tok-2", 1)
    acache, afetch = TokenCache(), Fetcher(fail=1)
    with pytest.raises(RuntimeError, match="IAM is down"):
        asyncio.run(acache.aget("k", afetch.afetch))
    assert asyncio.run(acache.aget("k", afetch.afetch)) == "tok-2"
    # The lock was released after the failure: a sync caller is not stuck behind it.
    assert acache.get("k", Fetcher()) == "tok-2"


def test_only_the_rejected_token_is_dropped() -> None:
    cache = TokenCache()
    cache.put("k", _token("current"))
    assert cache.invalidate("k", "older") is False
    assert cache.get("k", Fetcher()) == "current"
    assert cache.invalidate("k", "current") is True
    assert cache.invalidate("k", "current") is False
    assert cache.invalidate("never", "x") is False
    assert cache.get("k", lambda: _token("renewed")) == "renewed"
    cache.clear()
    assert cache.get("k", lambda: _token("after-clear")) == "after-clear"


def _settings(credentials: Credentials, **changes: object) -> ImageSearchSettings:
    fields: dict[str, object] = {
        "endpoint": "https://is.example:8443",
        "iam_endpoint": "https://iam.example",
        "region": "cn-north-4",
        "project_id": PROJECT,
        "credentials": credentials,
        "mms_endpoint": "https://mms.example",
    }
    fields.update(changes)
    return ImageSearchSettings(**fields)  # type: ignore[arg-type]


REQUEST = ApiRequest(
    "add_image", "POST", f"/v1/{PROJECT}/service/shop/data", {"path": "a.jpg"}, False, PROJECT
)
V2_REQUEST = ApiRequest(
    "add", "POST", f"/v2/{PROJECT}/mms/svc/data", {"id": "1"}, False, PROJECT, service="mms"
)


def test_a_ready_token_is_sent_in_x_auth_token_to_the_requests_service() -> None:
    auth = Authenticator(_settings(Credentials("token", token="ready-1")), cache=TokenCache())
    assert (auth.renewable, auth.token(Fetcher())) == (False, "ready-1")
    assert asyncio.run(auth.atoken(Fetcher().afetch)) == "ready-1"
    prepared = auth.prepare(REQUEST, "ready-1")
    assert (prepared.method, prepared.url) == (
        "POST",
        f"https://is.example:8443/v1/{PROJECT}/service/shop/data",
    )
    assert prepared.headers["X-Auth-Token"] == "ready-1"
    assert prepared.headers["X-Project-Id"] == PROJECT
    assert prepared.body == b'{"path":"a.jpg"}'
    assert auth.prepare(V2_REQUEST, "ready-1").url == f"https://mms.example/v2/{PROJECT}/mms/svc/data"
    assert "X-Auth-Token" not in auth.prepare(REQUEST, None).headers


def test_an_iam_token_comes_from_the_cache_and_a_rejection_drops_it() -> None:
    cache = TokenCache()
    creds = Credentials("iam_password", user="ada", domain_name="acme", password="pw")
    auth = Authenticator(_settings(creds), cache=cache)
    other = Authenticator(_settings(creds), cache=cache)
    fetch = Fetcher()
    assert auth.renewable
    assert (auth.token(fetch), other.token(fetch), fetch.calls) == ("tok-1", "tok-1", 1)
    assert asyncio.run(other.atoken(fetch.afetch)) == "tok-1"
    auth.reject("tok-1")
    assert other.token(fetch) == "tok-2"
    auth.reject("tok-1")  # already replaced: the new token stays
    auth.reject(None)
    assert auth.token(fetch) == "tok-2"
    assert auth.prepare(REQUEST, "tok-2").headers["X-Auth-Token"] == "tok-2"


def test_aksk_signs_method_host_path_and_body_for_the_requests_service() -> None:
    creds = Credentials("aksk", access_key="AK1", secret_key="SK1")
    auth = Authenticator(_settings(creds), cache=TokenCache())
    assert (auth.renewable, auth.token(Fetcher()), asyncio.run(auth.atoken(Fetcher().afetch))) == (
        False,
        None,
        None,
    )
    for request, host in ((REQUEST, "is.example:8443"), (V2_REQUEST, "mms.example")):
        prepared = auth.prepare(request, "ignored")
        assert "X-Auth-Token" not in prepared.headers
        assert prepared.headers["Host"] == host
        unsigned = {k: v for k, v in prepared.headers.items() if k != "Authorization"}
        expected = signing.sign_headers(
            access_key="AK1",
            secret_key="SK1",
            method="POST",
            host=host,
            path=request.path,
            headers=unsigned,
            body=request.encoded_body(),
        )
        assert prepared.headers["Authorization"] == expected["Authorization"]
        assert prepared.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=AK1, ")
    auth.reject("anything")  # nothing cached, nothing to drop: no error


def test_temporary_aksk_sends_and_signs_the_security_token() -> None:
    creds = Credentials("aksk", access_key="AK1", secret_key="SK1", security_token="ST1")
    prepared = Authenticator(_settings(creds), cache=TokenCache()).prepare(REQUEST, None)
    assert prepared.headers["X-Security-Token"] == "ST1"
    assert "x-security-token" in prepared.headers["Authorization"]
    plain = Authenticator(
        _settings(Credentials("aksk", access_key="AK1", secret_key="SK1")), cache=TokenCache()
    )
    assert "X-Security-Token" not in plain.prepare(REQUEST, None).headers
