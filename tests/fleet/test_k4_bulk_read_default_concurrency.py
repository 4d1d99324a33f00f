"""``InstanceDetailOperator(instance_names=...)`` reads at most 16 instances at a time unless told
otherwise (its documented default): with the first 16 reads slow, the 17th starts only when one of them
ends. (That it reads as many as 16 at once is not shown here: an order of answers that would prove it
depends on how fast the machine starts 16 threads.)"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from airflow_provider_imagesearch.operators.imagesearch import InstanceDetailOperator


def test_the_seventeenth_read_waits_for_one_of_the_first_sixteen(
    imagesearch_conn: Callable[..., str], emulator: Emulator
) -> None:
    names = [f"dc-{n:02d}" for n in range(17)]
    for name in names:
        emulator.upsert_instance(name, status="NORMAL")
    emulator.set_faults(sequence=["slow"] * 16, slow_seconds=0.3)
    operator = InstanceDetailOperator(
        task_id="read", imagesearch_conn_id=imagesearch_conn("token"), instance_names=names
    )
    details = operator.execute({})  # type: ignore[arg-type]
    assert [detail["instance_name"] for detail in details] == names
    reads = [r for r in emulator.requests_log() if r.get("instance")]
    assert sorted(r["instance"] for r in reads) == names
    # The log is in the order of the answers: the one fast read was not in flight with the sixteen slow
    # ones (it would have been answered first), it started when the first of them ended.
    assert [r["fault"] for r in reads].count("slow") == 16
    assert reads[0]["fault"] == "slow"
