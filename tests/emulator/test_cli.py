"""The CLI and EmulatorProcess: URL line, clean SIGTERM stop with state saved, option errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_READY_TOKEN, EmulatorProcess
from airflow_provider_imagesearch.emulator.__main__ import main

CLI = [sys.executable, "-m", "airflow_provider_imagesearch.emulator"]


def test_cli_prints_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"instances": [{"name": "seeded"}]}))
    state = tmp_path / "state.json"
    process = subprocess.Popen(
        [*CLI, "--seed", str(seed), "--state", str(state), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("IMAGESEARCH_EMULATOR_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        response = requests.get(
            f"{url}/v1/{DEFAULT_PROJECT_ID}/service/seeded",
            headers={"X-Auth-Token": DEFAULT_READY_TOKEN},
            timeout=5,
        )
        assert response.json()["status"] == "NORMAL"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert out == b""  # exactly one line on stdout
    assert err == b""  # --quiet
    assert [i["name"] for i in json.loads(state.read_text())["instances"]] == ["seeded"]


def test_cli_refuses_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert main(["--host", "192.168.1.10"]) == 2


def test_cli_rejects_bad_faults_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--faults", '{"drop_rate": 3}']) == 2
    assert "drop_rate" in capsys.readouterr().err
    assert main(["--faults", "not json"]) == 2
    assert main(["--seed", str(tmp_path / "missing.json")]) == 2


def test_emulator_process_runs_and_is_stopped(tmp_path: Path) -> None:
    emu = EmulatorProcess(
        seed={"instances": [{"name": "lib"}]}, faults={"sequence": ["503_json"]}, creation_seconds=0
    )
    with emu:
        assert emu.pid is not None
        url = f"{emu.url}/v1/{DEFAULT_PROJECT_ID}/service/lib"
        headers = {"X-Auth-Token": DEFAULT_READY_TOKEN}
        assert requests.get(url, headers=headers, timeout=5).status_code == 503
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        emu.upsert_instance("other", status="ABNORMAL")
        assert emu.stats()["by_status"] == {"503": 1, "200": 1}
    assert emu.returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_emulator_process_rejects_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorProcess(host="10.0.0.1")


def test_emulator_process_does_not_outlive_a_killed_parent() -> None:
    script = (
        "import sys, time\n"
        "from airflow_provider_imagesearch.emulator import EmulatorProcess\n"
        "emu = EmulatorProcess(); emu.start()\n"
        "print(emu.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert _alive(child_pid)
    finally:
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
