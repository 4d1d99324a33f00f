"""Review of issue 25, item 2 (round r25c): the behaviour tests added to kill mutation survivors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPAT_PYTHON = REPO / ".venv-compat" / "bin" / "python"


@pytest.mark.skipif(not COMPAT_PYTHON.exists(), reason="needs .venv-compat (make compat-install)")
@pytest.mark.parametrize(
    "test_file",
    [
        "tests/sensors/test_sensor_deferral_behaviour.py",
        "tests/operators/test_operator_lifecycle_deferral.py",
    ],
)
def test_new_deferral_tests_collect_on_the_floor_airflow(test_file: str) -> None:
    """`make test-compat` (CI's run on Airflow 3.1.8, COMPAT_TESTS includes tests/sensors and
    tests/operators) stops with a collection error: these two new files import ``TaskDeferred`` from
    ``airflow.sdk.exceptions``, which Airflow 3.1.8 does not have (it is ``airflow.exceptions`` there),
    so the floor run fails and none of their deferral checks run on the floor."""
    result = subprocess.run(
        [str(COMPAT_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", test_file],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_fleet_timeout_test_holds_when_the_first_round_is_slow(
    imagesearch_conn: object, emulator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/triggers/test_trigger_fleet_wait.py::test_a_timeout_names_the_pending_instances_with_their_last_status
    gives the wait ``timeout_at=time.time() + 0.3`` and asserts that every instance was read (statuses
    CREATION) and that a sleep happened: on a loaded 2-core machine the first round (hook, token, seven
    reads) takes longer than 0.3 s, the round is cut off, and the test fails on unchanged code (it failed
    3 runs of 3 here beside three busy loops: "7 of 7 instances ... (not found yet)"). The same test, its
    first read answered 0.4 s late as a loaded machine answers it."""
    from tests.triggers import test_trigger_fleet_wait as fleet

    emulator.set_faults(sequence=["slow"], slow_seconds=0.4)  # type: ignore[attr-defined]
    fleet.test_a_timeout_names_the_pending_instances_with_their_last_status(
        fleet.conn.__wrapped__(imagesearch_conn),  # type: ignore[attr-defined]
        emulator,  # type: ignore[arg-type]
        monkeypatch,
    )


def test_the_instance_timeout_test_holds_when_the_first_read_is_slow(
    imagesearch_conn: object, emulator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/triggers/test_trigger_instance_wait.py::test_the_wait_times_out_at_timeout_at_naming_the_goal
    gives the wait 0.3 s and asserts a sleep happened (``assert real.sleeps``): when the first read takes
    longer (a loaded CI machine), the read is cut off at timeout_at, no sleep happens, and the test fails
    on unchanged code. The same test, its first read answered 0.4 s late."""
    from tests.triggers import test_trigger_instance_wait as single

    emulator.set_faults(sequence=["slow"], slow_seconds=0.4)  # type: ignore[attr-defined]
    single.test_the_wait_times_out_at_timeout_at_naming_the_goal(
        single.conn.__wrapped__(imagesearch_conn),  # type: ignore[attr-defined]
        emulator,  # type: ignore[arg-type]
        monkeypatch,
    )


_OSP_CHILD = r"""
import http.server, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"path,tag.color\nhttps://shop.obs.x/1.jpg,red\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
from airflow.sdk import ObjectStoragePath
from airflow_provider_imagesearch.imports.manifest import read_chunks
url = f"http://127.0.0.1:{srv.server_address[1]}/m.csv?Signature=abcdefghijk"
rows = [r for chunk in read_chunks(ObjectStoragePath(url)) for r in chunk]
print("ROWS", len(rows))
from airflow_provider_imagesearch.errors import ImageSearchValidationError
try:
    [r for chunk in read_chunks(ObjectStoragePath(url.replace("/m.csv", "/missing.csv"))) for r in chunk]
except ImageSearchValidationError as error:
    print("ERROR", error)
"""


@pytest.mark.skipif(not COMPAT_PYTHON.exists(), reason="needs .venv-compat (make compat-install)")
def test_an_http_objectstoragepath_manifest_reads_on_the_floor_airflow() -> None:
    """A user on Airflow 3.1.8 (the supported floor) passing ``manifest=ObjectStoragePath("https://...")``
    (the form the import docs and tests/imports/test_object_store.py support, and the one this change's
    masking fix is for) gets "Invalid manifest 'https://https://host/...': ... gaierror": 3.1.8's
    ObjectStoragePath prints an http(s) URL with its scheme twice, and the reader downloaded ``str(manifest)``.
    Fine on 3.3; the compat run never covers tests/imports, so nothing caught it. Now read by its ``path``
    (the whole URL on 3.1 and 3.3): the rows arrive, and an error shows the URL once, its query hidden."""
    result = subprocess.run(
        [str(COMPAT_PYTHON), "-c", _OSP_CHILD], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "ROWS 1" in result.stdout, result.stderr[-1500:]
    # An error names the URL as the user wrote it, its query hidden: not 'http://http://...'.
    error = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    assert "'http://127.0.0.1:" in error, error
    assert "/missing.csv?<query hidden>'" in error, error
    assert "http://http" not in error, error
    assert "Signature" not in error, error
