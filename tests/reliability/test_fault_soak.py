"""Item 1: a fault soak through one hook, with every retry accounted for on the emulator's side.

Phase 1: 2,000 ``get_instance`` calls through ONE hook while the emulator (a child process, so it does
not share the GIL with the client) injects 10% 5xx, 5% 429 (``Retry-After: 0.01``), 2% dropped
connections and 1% responses slower than the read timeout. Every call must succeed, and the hook's
``retry_stats`` must match the faults the emulator injected, cause by cause.

Phase 2: the same faults plus 3% 403 (``forbidden_rate``), one distinct instance per call so the
emulator's request log can be read call by call: every failed call ended on exactly one 403 with no
repeat, no call was retried after a 403, and total requests = successful calls + failed calls + retries.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, EmulatorProcess
from airflow_provider_imagesearch.emulator.faults import ERROR_5XX_KINDS
from airflow_provider_imagesearch.errors import ImageSearchAuthError, ImageSearchError
from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
from tests.reliability.support import SecretAudit
from tests.support.connections import connection_fields, set_connection
from tests.support.waiting import wait_until

SOAK_CALLS = 2000
FORBIDDEN_CALLS = 800
# The read timeout leaves a stalled CI machine a second to answer a request that has no fault (else it
# would time out and be retried, and the accounting below would be off by one); "slow" is far beyond it.
READ_TIMEOUT = 1.0
SLOW_SECONDS = 3.0
FAULTS: dict[str, Any] = {
    "error_5xx_rate": 0.10,
    "throttle_429_rate": 0.05,
    "drop_rate": 0.02,
    "slow_rate": 0.01,
    "retry_after": "0.01",
    "slow_seconds": SLOW_SECONDS,
}
#: Causes a 4xx other than 429 must never produce.
RETRY_CAUSES = ("5xx", "429", "dropped", "timeout", "connect", "other")


@pytest.fixture(scope="module")
def soak_emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(creation_seconds=1.0, deletion_seconds=1.0) as emulator:
        yield emulator


@pytest.fixture
def soak_conn(monkeypatch: pytest.MonkeyPatch, soak_emulator: EmulatorProcess, audit: SecretAudit) -> str:
    audit.watch(soak_emulator)
    soak_emulator.control.reset_faults()
    soak_emulator.reset_stats()
    fields = connection_fields(
        soak_emulator.url,
        "iam_password",
        backoff_initial=0.005,
        backoff_max=0.05,
        max_attempts=8,
        read_timeout=READ_TIMEOUT,
        connect_timeout=2,
    )
    return set_connection(monkeypatch, "imagesearch_soak", **fields)


def _api_log(emulator: EmulatorProcess, hook: ImageSearchHook) -> list[dict[str, Any]]:
    # Slow requests are logged only when the emulator gives up on them (after slow_seconds), i.e.
    # after the client moved on: wait until every request the client timed out on is in the log.
    timed_out = hook.retry_stats["timeout"]
    log = wait_until(
        emulator.requests_log,
        lambda log: sum(1 for r in log if r["fault"] == "slow") >= timed_out,
        timeout=SLOW_SECONDS + 10,
    )
    return [r for r in log if r["path"].startswith("/v1/")]


def _retries(hook: ImageSearchHook) -> int:
    return sum(count for cause, count in hook.retry_stats.items() if cause != "token_renewal")


def test_soak_every_call_succeeds_and_every_retry_is_accounted_for(
    soak_emulator: EmulatorProcess, soak_conn: str, audit: SecretAudit
) -> None:
    soak_emulator.upsert_instance("soak-1", status="NORMAL")
    soak_emulator.set_faults(**FAULTS, random_seed=11)
    hook = ImageSearchHook(soak_conn)
    failures: list[ImageSearchError] = []
    started = time.perf_counter()
    for _ in range(SOAK_CALLS):
        try:
            assert hook.get_instance("soak-1").instance_name == "soak-1"
        except ImageSearchError as error:
            audit.exception("soak call", error)
            failures.append(error)
    elapsed = time.perf_counter() - started
    hook.close()
    log = _api_log(soak_emulator, hook)
    stats = soak_emulator.stats()
    faults = Counter(stats["faults_injected"])
    retries = _retries(hook)
    injected_5xx = sum(faults[kind] for kind in ERROR_5XX_KINDS)
    audit.figure(
        "fault soak",
        calls=SOAK_CALLS,
        failed=len(failures),
        retries=retries,
        retries_by_cause=dict(hook.retry_stats),
        faults_injected=dict(faults),
        api_requests=len(log),
        total_s=elapsed,
        client_calls_per_s=SOAK_CALLS / elapsed,
        emulator_requests_per_s=len(log) / elapsed,
        token_requests=stats["token_requests"],
    )
    assert not failures, [str(f) for f in failures[:5]]
    # Every fault kind really happened (the soak is not vacuous) ...
    assert min(injected_5xx, faults["429"], faults["drop"], faults["slow"]) > 0, faults
    # ... and each one cost exactly one retry of the matching cause, no more, no less.
    assert hook.retry_stats["5xx"] == injected_5xx
    assert hook.retry_stats["429"] == faults["429"]
    assert hook.retry_stats["dropped"] == faults["drop"]
    assert hook.retry_stats["timeout"] == faults["slow"]
    assert set(hook.retry_stats) <= {"5xx", "429", "dropped", "timeout"}
    # Emulator side: every request is a call or a retry; exactly one 200 per call; no other 4xx.
    assert len(log) == SOAK_CALLS + retries
    statuses = Counter(r["status"] for r in log if r["fault"] != "slow")  # slow ones timed out client-side
    assert statuses[200] == SOAK_CALLS
    assert not [s for s in statuses if s is not None and 400 <= s < 500 and s != 429]
    assert stats["token_requests"] == 1
    # 429s waited for Retry-After (0.01 s) and backoffs are capped (0.05 s): the soak stays fast.
    assert elapsed < 90


def test_soak_with_403_never_retries_a_forbidden_call(
    soak_emulator: EmulatorProcess, soak_conn: str, audit: SecretAudit
) -> None:
    names = [f"f-{i:04d}" for i in range(FORBIDDEN_CALLS)]
    soak_emulator.control.upsert_instances(
        [{"project_id": DEFAULT_PROJECT_ID, "name": name, "status": "NORMAL"} for name in names]
    )
    soak_emulator.set_faults(**FAULTS, forbidden_rate=0.03, random_seed=23)
    hook = ImageSearchHook(soak_conn)
    succeeded: set[str] = set()
    forbidden: dict[str, ImageSearchAuthError] = {}
    other_failures: list[BaseException] = []
    started = time.perf_counter()
    for name in names:
        try:
            hook.get_instance(name)
            succeeded.add(name)
        except ImageSearchAuthError as error:
            forbidden[name] = error
        except ImageSearchError as error:
            other_failures.append(error)
    elapsed = time.perf_counter() - started
    hook.close()
    for refused in list(forbidden.values())[:5]:
        audit.exception("forbidden call", refused)
    log = _api_log(soak_emulator, hook)
    retries = _retries(hook)
    per_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        per_call[entry["instance"]].append(entry)
    forbidden_entries = [r for r in log if r["status"] == 403]
    audit.figure(
        "fault soak with 403",
        calls=len(names),
        succeeded=len(succeeded),
        failed_403=len(forbidden),
        emulator_403s=len(forbidden_entries),
        retries=retries,
        retries_by_cause=dict(hook.retry_stats),
        api_requests=len(log),
        total_s=elapsed,
        emulator_requests_per_s=len(log) / elapsed,
    )
    assert not other_failures, [str(f) for f in other_failures[:5]]
    assert forbidden, "no 403 was injected: the phase proves nothing"
    assert all(e.status == 403 and e.error_code == "APIGW.0302" for e in forbidden.values())
    # One 403 per failed call, and total requests = successful calls + failed calls + retries.
    assert len(forbidden_entries) == len(forbidden)
    assert len(log) == len(succeeded) + len(forbidden) + retries
    for name in names:
        # Slow requests are logged late (out of order), so the order check ignores them.
        entries = [r for r in per_call[name] if r["fault"] != "slow"]
        assert entries, name
        *before, last = entries
        assert all(r["status"] is None or r["status"] == 429 or r["status"] >= 500 for r in before), (
            name,
            entries,
        )
        if name in forbidden:
            assert last["status"] == 403, (name, entries)
        else:
            assert last["status"] == 200, (name, entries)


V2_SOAK_CALLS = 300


def test_soak_v2_calls_succeed_and_every_retry_is_accounted_for(
    soak_emulator: EmulatorProcess, soak_conn: str, audit: SecretAudit
) -> None:
    """The v2 (MMS) calls under the same faults: idempotent ones (check, search, update, forced add) all
    succeed through retries, each retry matching one injected fault."""
    items = {f"v{n}": {"image_url": f"https://cdn.example/{n}.jpg", "keywords": ["soak"]} for n in range(20)}
    soak_emulator.upsert_v2_service("soak-v2", items=items)
    soak_emulator.set_faults(**FAULTS, random_seed=13)
    hook = ImageSearchHook(soak_conn)
    failures: list[ImageSearchError] = []
    for n in range(V2_SOAK_CALLS):
        item = f"v{n % 20}"
        try:
            kind = n % 4
            if kind == 0:
                assert hook.check_data("soak-v2", item_id=item).existed is True
            elif kind == 1:
                assert (
                    len(hook.search_data("soak-v2", search_type="KEYWORD", keywords=["soak"], limit=20).items)
                    == 20
                )
            elif kind == 2:
                assert hook.update_data("soak-v2", item_id=item, desc=f"call {n}") == "success"
            else:
                url = f"https://cdn.example/{n % 20}.jpg"
                assert (
                    hook.add_data(
                        "soak-v2", item_id=item, image_url=url, keywords=["soak"], force=True
                    ).result
                    == "success"
                )
        except ImageSearchError as error:
            audit.exception("v2 soak call", error)
            failures.append(error)
    hook.close()
    timed_out = hook.retry_stats["timeout"]
    log = wait_until(
        soak_emulator.requests_log,
        lambda log: sum(1 for r in log if r["fault"] == "slow") >= timed_out,
        timeout=SLOW_SECONDS + 10,
    )
    log = [r for r in log if r["path"].startswith("/v2/")]
    faults = Counter(soak_emulator.stats()["faults_injected"])
    audit.figure(
        "v2 fault soak", calls=V2_SOAK_CALLS, retries_by_cause=dict(hook.retry_stats), faults=dict(faults)
    )
    assert not failures, [str(f) for f in failures[:5]]
    assert sum(faults[kind] for kind in ERROR_5XX_KINDS) > 0
    assert hook.retry_stats["5xx"] == sum(faults[kind] for kind in ERROR_5XX_KINDS)
    assert hook.retry_stats["429"] == faults["429"]
    assert hook.retry_stats["dropped"] == faults["drop"]
    assert hook.retry_stats["timeout"] == faults["slow"]
    assert len(log) == V2_SOAK_CALLS + _retries(hook)
    assert Counter(r["status"] for r in log if r["fault"] != "slow")[200] == V2_SOAK_CALLS
