"""Review of issue 23 in a real ``airflow standalone``: two assets watching the same fleet, and an
instance whose details hold a lone UTF-16 surrogate (a tag cut in the middle of an emoji).

The ImageSearch endpoint is the emulator behind a loopback proxy that, for one instance, answers its tag
as the JSON escape ``"\\ud83d"`` (the emulator itself cannot store such a string).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, Emulator
from tests.events.test_standalone_events import _environ, _stop, _triggerer_pid
from tests.support.connections import connection_fields, env_name
from tests.support.reaper import alive
from tests.support.waiting import wait_until
from tests.ui.standalone import Standalone, run_standalone

pytestmark = pytest.mark.timeout(900)
CONN_ID = "imagesearch_review_events"
POLL = 4.0
FLEET = ["ev-a", "ev-b", "ev-c"]
CUT = "ev-c"

DAG_TEXT = f"""
from datetime import datetime
from airflow.sdk import Asset, AssetWatcher, dag, task
from airflow_provider_imagesearch.triggers.events import ImageSearchInstanceStatusEventTrigger

def watcher(name, statuses):
    return AssetWatcher(name=name, trigger=ImageSearchInstanceStatusEventTrigger(
        instance_names={FLEET!r}, statuses=statuses, imagesearch_conn_id={CONN_ID!r}, poll_interval={POLL}))

READY = Asset(name="review_ready", watchers=[watcher("review_ready_w", ["NORMAL"])])
TWIN = Asset(name="review_ready_twin", watchers=[watcher("review_twin_w", ["NORMAL"])])
INCIDENT = Asset(name="review_incident", watchers=[watcher("review_incident_w", ["ABNORMAL", "ARREARAGE"])])

for dag_id, asset in (("review_on_ready", READY), ("review_on_twin", TWIN), ("review_on_incident", INCIDENT)):
    @dag(dag_id=dag_id, schedule=[asset], start_date=datetime(2026, 1, 1), catchup=False)
    def consumer():
        @task
        def noop():
            return None
        noop()
    consumer()
"""


class _Proxy(http.server.ThreadingHTTPServer):
    upstream: str


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Proxy

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        request = urllib.request.Request(
            self.server.upstream + self.path,
            data=body,
            method=self.command,
            headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, dict(error.headers), error.read()
        if self.command == "GET" and self.path.endswith(f"/service/{CUT}") and status == 200:
            answer = json.loads(raw)
            answer["tags"] = ["cut \ud83d"]  # json.dumps writes it as the escape \ud83d
            raw = json.dumps(answer).encode()
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = _forward


@contextlib.contextmanager
def _proxy(upstream: str) -> Iterator[str]:
    server = _Proxy(("127.0.0.1", 0), _Handler)
    server.upstream = upstream
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _events(airflow: Standalone, asset: str) -> list[dict[str, Any]]:
    # Airflow 3.3.2's /assets/events answers 500 (AssetEventResponse: created_dagruns.start_date None)
    # while a DAG run an event created is still queued: asked again a moment later, it answers.
    for _ in range(20):
        status, body = airflow.api("GET", "/api/v2/assets/events?limit=100")
        if status != 500:
            break
        time.sleep(0.5)
    assert status == 200, body
    return [e["extra"]["payload"] for e in body["asset_events"] if e.get("name") == asset]


@pytest.mark.not_in_mutation_run
def test_a_lone_surrogate_in_one_instance_does_not_stop_every_watcher(tmp_path: Path) -> None:
    """Two assets with the same watcher both get the event (held). Then ev-c, whose tag comes back as a
    lone surrogate, becomes NORMAL: the triggerer cannot send that event to its supervisor, its trigger
    runner fails, and afterwards ev-b entering ABNORMAL starts nothing: every watcher (and every
    deferred task) of the triggerer is gone until someone restarts it, and on 3.3 a restarted one
    fires the same unsendable event again (its memory was not stored)."""
    home = tmp_path / "home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "review_events.py").write_text(DAG_TEXT)
    with Emulator() as emulator, _proxy(emulator.url) as proxy:
        for name in FLEET:
            emulator.upsert_instance(name, project_id=DEFAULT_PROJECT_ID, status="CREATION", tags=["color"])
        env = {
            env_name(CONN_ID): json.dumps(connection_fields(proxy, "token")),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
        with run_standalone(home, dags, env, ready_timeout=300) as airflow:
            reads = wait_until(
                lambda: [r for r in emulator.requests_log() if r.get("instance") == "ev-a"],
                lambda found: len(found) >= 2,
                timeout=240,
                every=1,
            )
            assert len(reads) >= 2, airflow.tail()
            time.sleep(POLL)
            # 1. Two assets watching the same instance with the same watcher: each gets the event.
            emulator.upsert_instance("ev-a", project_id=DEFAULT_PROJECT_ID, status="NORMAL", tags=["color"])
            twin = wait_until(
                lambda: (_events(airflow, "review_ready"), _events(airflow, "review_ready_twin")),
                lambda pair: bool(pair[0]) and bool(pair[1]),
                timeout=60,
                every=1,
            )
            assert [e["instance_name"] for e in twin[0]] == ["ev-a"], twin
            assert [e["instance_name"] for e in twin[1]] == ["ev-a"], twin
            time.sleep(2 * POLL)
            with sqlite3.connect(home / "airflow.db") as db:
                stored = db.execute("SELECT asset_id, key, length(value) FROM asset_state_store").fetchall()
            print("asset_state_store:", stored)
            assert _events(airflow, "review_incident") == []
            # 2. The instance whose tag is a lone surrogate becomes NORMAL.
            triggerer = _triggerer_pid(airflow)
            triggerer_env = _environ(triggerer)
            emulator.upsert_instance(CUT, project_id=DEFAULT_PROJECT_ID, status="NORMAL", tags=["color"])
            time.sleep(4 * POLL)
            first_died = not alive(triggerer)
            # 3. Someone restarts the triggerer (as a supervisor or Kubernetes would).
            restarted_log = home / "triggerer-restarted.log"
            with restarted_log.open("wb") as sink:
                restarted = subprocess.Popen(
                    [str(Path(sys.executable).with_name("airflow")), "triggerer"],
                    env=triggerer_env,
                    cwd=home,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                wait_until(lambda: restarted.poll(), lambda code: code is not None, timeout=90, every=1)
                second_died = restarted.poll() is not None
                # 4. Another instance fails: its incident must be reported.
                emulator.upsert_instance(
                    "ev-b", project_id=DEFAULT_PROJECT_ID, status="ABNORMAL", tags=["color"]
                )
                incidents = wait_until(
                    lambda: _events(airflow, "review_incident"),
                    lambda found: bool(found),
                    timeout=45,
                    every=1,
                )
            finally:
                _stop(restarted)
            shutil.copy(airflow.output, Path("/tmp") / "r2324-standalone-events.log")
            shutil.copy(restarted_log, Path("/tmp") / "r2324-standalone-events-restarted.log")
            ready = [e["instance_name"] for e in _events(airflow, "review_ready")]
            print(
                f"first triggerer died: {first_died}; restarted one died: {second_died}; ready events: {ready}"
            )
            with sqlite3.connect(home / "airflow.db") as db:
                print(
                    db.execute(
                        "SELECT a.name, s.key, s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id"
                    ).fetchall()
                )
            assert [e["instance_name"] for e in incidents] == ["ev-b"], (
                "no incident after the surrogate event"
            )
