"""A row that waited out a 429 takes back one slot of the import's concurrency, not every free one.

The concurrency the service sees is the one the docs promise (docs/bulk-import.rst, Throttling): a 429
halves the requests in flight, each success grows it back by one up to ``max_concurrency``. A row that
hoarded the free slots when it came back from its wait would keep the extra ones after it was done, and
the rest of the import would run below that concurrency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.imports.conftest import v2_items
from tests.support.connections import connection_fields, set_connection
from tests.support.rewriting_proxy import RewritingProxy

RunImport = Callable[..., dict[str, Any]]
CDN = "https://cdn.example"
#: How long the proxy holds a delete for the others to arrive: far longer than three requests sent
#: together take to arrive on a loaded machine; only a delete that is never sent waits it out.
GATHER_SECONDS = 30.0


def _items(names: list[str]) -> list[dict[str, Any]]:
    return [{"item_id": name, "image_url": f"{CDN}/{name}.jpg"} for name in names]


class DeleteGate:
    """Holds each delete's answer until ``expected`` deletes are in flight together (or the time runs
    out); ``peak`` is the most that were."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    def __call__(self, path: str, body: dict[str, Any], status: int, answer: Any) -> Any:
        if not path.endswith("/data/delete"):
            return answer
        with self._cond:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.peak >= self.expected, GATHER_SECONDS)
            self.in_flight -= 1
        return answer


def test_after_a_429_halved_the_concurrency_and_a_success_grew_it_back_the_import_runs_at_it(
    run_v2_import: RunImport,
    emulator: Emulator,
    service: str,
    ledger_conn: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``max_concurrency=4``: the one add is throttled (4 -> 2), waits its 1 ms ``Retry-After`` with no
    other request in flight, lands (2 -> 3); the prune then sends its three deletes at once."""
    from airflow_provider_imagesearch.operators.import_images import ImageSearchV2ImportDataOperator

    if ledger_conn["name"] != "sqlite":
        pytest.skip("the concurrency does not depend on the ledger's database")
    run_v2_import(_items(["old-1", "old-2", "old-3"]))
    emulator.reset_stats()
    gate = DeleteGate(expected=3)
    emulator.set_faults(sequence=["429"], retry_after="0.001")
    with RewritingProxy(emulator.url, gate) as proxy:
        fields = connection_fields(emulator.url, "token")
        fields["extra"]["mms_endpoint"] = proxy.url
        op = ImageSearchV2ImportDataOperator(
            task_id="import",
            service_name=service,
            manifest=_items(["new-1"]),
            max_concurrency=4,
            prune=True,
            imagesearch_conn_id=set_connection(monkeypatch, "through_proxy", **fields),
        )
        result = op.execute({"run_id": "run-2"})
    assert [r["status"] for r in emulator.requests_log() if r["route"].endswith("/data/add")] == [429, 200]
    assert (result["added"], result["pruned"], result["failed"]) == (1, 3, 0)
    assert set(v2_items(emulator)) == {"new-1"}
    assert gate.peak == 3, "the deletes did not run three at a time"
