"""What the page prints of a value: redacted URLs, safe CSV cells, statuses, the chart's lanes, its options."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_imagesearch.models import InstanceStatus
from airflow_provider_imagesearch.plugins import render
from airflow_provider_imagesearch.plugins.chart import build_chart
from airflow_provider_imagesearch.plugins.options import OPTIONS, OptionError, PageOptions, config_section
from airflow_provider_imagesearch.plugins.queries import StatusPoint


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # A presigned OBS/S3 URL: the signature is in the query string.
        (
            "https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg?AccessKeyId=AK&Signature=abc%2Bdef&Expires=1",
            "https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg?***",
        ),
        ("https://s3.example/k?X-Amz-Signature=ff#frag", "https://s3.example/k?***"),
        ("https://h.example/p#access_token=secret", "https://h.example/p?***"),
        ("sftp://user:p@ss@host.example/file.csv", "sftp://***@host.example/file.csv"),
        (
            "download of https://x.example/a?sig=1 failed; retry https://y.example/b?sig=2.",
            "download of https://x.example/a?*** failed; retry https://y.example/b?***",
        ),
        (
            "https://b.obs.cn-north-4.myhuaweicloud.com/img/1.jpg",
            "https://b.obs.cn-north-4.myhuaweicloud.com/img/1.jpg",
        ),
        # An error body quoting the URL as JSON text (escaped slashes).
        (
            '{"url": "https:\\/\\/b.obs.example\\/a.jpg?AccessKeyId=AK&Signature=abc"}',
            '{"url": "https:\\/\\/b.obs.example\\/a.jpg?***"}',
        ),
        # A query string without its URL, and a percent-encoded URL.
        (
            "GET /a.jpg?AccessKeyId=AK&Signature=abc%2Bdef&Expires=1 refused",
            "GET /a.jpg?AccessKeyId=***&Signature=***&Expires=1 refused",
        ),
        (
            "source=https%3A%2F%2Fs3.example%2Fk%3FX-Amz-Credential%3DAK%2F1%26X-Amz-Signature%3Dff",
            "source=https%3A%2F%2Fs3.example%2Fk%3FX-Amz-Credential%3D***%26X-Amz-Signature%3D***",
        ),
        ("retry with token=abc&sig=x1", "retry with token=***&sig=***"),
        ("sku-1", "sku-1"),
        ("", ""),
        (None, ""),
    ],
)
def test_redact(text: str | None, shown: str) -> None:
    assert render.redact(text) == shown


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("path/a.jpg", "path/a.jpg"),
        (12, "12"),
        (None, ""),
        ("https://h.example/a?Signature=x", "https://h.example/a?***"),
    ],
)
def test_csv_cells_are_never_formulas(value: object, cell: str) -> None:
    assert render.csv_cell(value) == cell


def test_every_status_has_a_tone() -> None:
    tones = {status.value: render.status_tone(status.value) for status in InstanceStatus}
    assert tones["NORMAL"] == "ok"
    assert {tones[s] for s in ("ABNORMAL", "ARREARAGE", "CREATION_FAILD", "DELETING_FAILED")} == {"bad"}
    assert tones["CREATION"] == tones["DELETING"] == "busy"
    assert render.status_tone("SOMETHING_NEW") == "unknown"


def test_tags_and_expiry() -> None:
    assert render.tags(json.dumps(["color", "size"])) == ["color", "size"]
    assert render.tags("") == []
    assert render.tags("not json") == ["not json"]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert render.expiry(None, True, now) == ("never", "ok")
    assert render.expiry(now - timedelta(days=1), False, now) == ("2026-02-28 (expired)", "bad")
    assert render.expiry(now + timedelta(days=10), False, now) == ("2026-03-11", "busy")
    assert render.expiry(now + timedelta(days=100), False, now)[1] == "ok"


def test_dag_run_links_are_encoded_and_relative() -> None:
    assert (
        render.dag_run_href("imagesearch_instance_archive", "manual__2026-03-01T00:00:00+00:00")
        == "../dags/imagesearch_instance_archive/runs/manual__2026-03-01T00%3A00%3A00%2B00%3A00"
    )
    assert render.dag_run_href("d", "../../x") == "../dags/d/runs/..%2F..%2Fx"


def _t(minute: int) -> datetime:
    return datetime(2026, 3, 3, 10, minute, tzinfo=UTC)


def test_chart_lanes_segments_and_changes() -> None:
    chart = build_chart(
        {
            "shop-a": [
                StatusPoint("r1", "NORMAL", _t(0)),
                StatusPoint("r2", "NORMAL", _t(10)),
                StatusPoint("r3", "ABNORMAL", _t(20)),
                StatusPoint("r4", "ABNORMAL", _t(30)),
            ],
            "shop-b": [StatusPoint("r1", "NORMAL", _t(0)), StatusPoint("r4", "NORMAL", _t(30))],
            "shop-c": [],
        }
    )
    a, b, c = chart.lanes
    assert [(s.status, s.snapshots, s.first_run_id) for s in a.segments] == [
        ("NORMAL", 2, "r1"),
        ("ABNORMAL", 2, "r3"),
    ]
    # The NORMAL segment ends where ABNORMAL begins; both lie inside the plot.
    assert a.segments[0].x + a.segments[0].width == pytest.approx(a.segments[1].x)
    assert chart.plot_x <= a.segments[0].x
    assert a.segments[1].x + a.segments[1].width <= chart.plot_x + chart.plot_width + 0.01
    assert a.summary == "ABNORMAL since 2026-03-03 10:20:00 UTC"
    assert b.summary == "NORMAL throughout"
    assert c.summary == "no snapshot in this window"
    assert [(ch.instance_name, ch.before, ch.after, ch.run_id) for ch in chart.changes] == [
        ("shop-a", "NORMAL", "ABNORMAL", "r3")
    ]
    assert [label for label, _ in chart.legend] == ["ABNORMAL", "NORMAL"]
    assert chart.ticks[0].label == "03-03 10:00:00"
    assert [tick.anchor for tick in chart.ticks] == ["start", "middle", "middle", "middle", "middle"]
    # The newest status is drawn for one usual interval between runs (10 minutes here).
    assert a.segments[1].width == pytest.approx(a.segments[0].width)
    assert build_chart({}).lanes == []


def test_options_defaults_and_refusals() -> None:
    assert PageOptions.from_strings({}) == PageOptions()
    options = PageOptions.from_strings({"page_size": "10", "archive_table": "rep.arch"})
    assert (options.page_size, options.archive_table) == (10, "rep.arch")
    for raw, message in [
        ({"page_size": "0"}, "[imagesearch] page_size must be an integer from 1 to 500, got '0'"),
        ({"history_days": "x"}, "[imagesearch] history_days must be an integer from 1 to 3660, got 'x'"),
        ({"ledger_table": "t; drop table x"}, "[imagesearch] ledger_table must be a SQL identifier"),
        ({"archive_conn_id": " "}, "[imagesearch] archive_conn_id must name an Airflow connection"),
    ]:
        with pytest.raises(OptionError) as refused:
            PageOptions.from_strings(raw)
        assert str(refused.value).startswith(message)


def test_the_config_section_is_what_airflow_accepts() -> None:
    import importlib.resources

    import jsonschema

    from airflow_provider_imagesearch.get_provider_info import get_provider_info

    schema = json.loads(
        importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text()
    )
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["config"] == config_section()
    assert set(info["config"]["imagesearch"]["options"]) == set(OPTIONS)
    assert info["plugins"] == [
        {
            "name": "imagesearch",
            "plugin-class": "airflow_provider_imagesearch.plugins.plugin.ImageSearchPlugin",
        }
    ]


def test_the_plugin_module_imports_no_web_or_sql_stack() -> None:
    """Task runners import every plugin: the page's own modules and FastAPI load at its first request."""
    import subprocess
    import sys

    code = (
        # What any plugin module costs: Airflow and the AirflowPlugin base class.
        "from airflow.providers.common.compat.sdk import AirflowPlugin; import sys; before = set(sys.modules);"
        "import airflow_provider_imagesearch.plugins.plugin as p;"
        "added = sorted(m for m in set(sys.modules) - before if not m.startswith('airflow_provider_imagesearch.plugins')"
        " or m.rpartition('.')[2] in ('app', 'queries', 'render', 'chart'));"
        "print('ADDED=' + ','.join(added)); print('LOADED=' + ','.join(m for m in ('fastapi',) if m in sys.modules));"
        "print('NAME=' + str(p.ImageSearchPlugin.name))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert lines["NAME"] == "imagesearch"
    assert lines["LOADED"] == ""
    # Only the provider package itself (its __init__) may come along.
    assert set(filter(None, lines["ADDED"].split(","))) <= {"airflow_provider_imagesearch"}
