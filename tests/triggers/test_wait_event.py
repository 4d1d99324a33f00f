"""The event a wait fires: a short log line, the whole payload delivered."""

from __future__ import annotations

from airflow_provider_imagesearch.triggers.imagesearch import ImageSearchWaitEvent


def _fleet_payload(count: int) -> dict[str, object]:
    details = {"project_id": "p" * 32, "status": "NORMAL", "domain": "General image search", "tags": []}
    instances = [{"instance_name": f"fleet-{i:04d}", **details} for i in range(count)]
    return {"status": "success", "message": f"All {count} instances are NORMAL", "instances": instances}


def test_the_logged_repr_of_a_fleet_event_is_a_summary_not_every_instance() -> None:
    # The triggerer logs repr(event) in one line; 1,000 instances' details made it ~100 KB, which its
    # log forwarding split and rejected as "Malformed json log" (seen in airflow standalone).
    event = ImageSearchWaitEvent(payload=_fleet_payload(1000))
    text = repr(event)
    assert len(text) < 300, text
    assert "<details of 1000 instances>" in text
    assert "All 1000 instances are NORMAL" in text


def test_the_payload_reaches_the_supervisor_whole() -> None:
    from airflow.jobs import triggerer_job_runner as runner

    payload = _fleet_payload(1000)
    event = ImageSearchWaitEvent(payload=payload)
    # Airflow 3.3 queues a TriggerEventEntry; 3.1 a (trigger id, event) pair.
    entry_type = getattr(runner, "TriggerEventEntry", None)
    entry = entry_type(7, event, None) if entry_type is not None else (7, event)
    wire = runner.messages.TriggerStateChanges(events=[entry]).model_dump_json()
    received = runner.messages.TriggerStateChanges.model_validate_json(wire)
    assert received.events is not None
    assert received.events[0][1].payload == payload


def test_a_single_instance_event_still_shows_its_details() -> None:
    event = ImageSearchWaitEvent(
        {"status": "success", "instance": {"instance_name": "shop", "status": "NORMAL"}}
    )
    assert "'instance_name': 'shop'" in repr(event)
