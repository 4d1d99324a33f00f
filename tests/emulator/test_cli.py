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
from airflow_provider_imagesearch.emulator.__main__ import DOCS, SAMPLE_SEED, main
from tests.support.reaper import alive

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
        assert alive(child_pid)
    finally:
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        parent.wait()
    deadline = time.monotonic() + 10
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child_pid)


# --- what a newcomer needs: connection values, the banner, the sample seed, the docs ---------------------
def _start(args: list[str], cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    assert line.startswith("IMAGESEARCH_EMULATOR_URL="), line
    return process, line.strip().split("=", 1)[1]


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    return err.decode()


def test_print_connection_gives_three_connections_that_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    process, url = _start(["--quiet", "--seed", str(_seed(tmp_path))])
    try:
        port = url.rsplit(":", 1)[1]
        printed = subprocess.run(
            [*CLI, "--port", port, "--print-connection"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        exports = [line for line in printed.splitlines() if line.startswith("export ")]
        assert len(exports) == 3
        auth_types = []
        for line in exports:
            name, _, value = line[len("export ") :].partition("=")
            assert name == "AIRFLOW_CONN_IMAGESEARCH_DEFAULT"
            fields = json.loads(value.strip("'"))
            extra = fields["extra"]
            # Every endpoint is the emulator: no call, v1, v2 or IAM, leaves the machine.
            assert fields["host"] == extra["iam_endpoint"] == extra["mms_endpoint"] == url
            monkeypatch.setenv(name, value.strip("'"))
            hook = ImageSearchHook()
            auth_types.append(hook.settings.credentials.auth_type)
            assert hook.get_instance("seeded").status.value == "NORMAL"
            assert hook.check_data("svc", item_id="a").existed is True
        assert auth_types == ["iam_password", "aksk", "token"]
    finally:
        _stop(process)


def _seed(tmp_path: Path) -> Path:
    seed = tmp_path / "mine.json"
    seed.write_text(
        json.dumps(
            {
                "instances": [{"name": "seeded"}],
                "v2_services": [{"name": "svc", "items": {"a": {"image_url": "https://x/a.jpg"}}}],
            }
        )
    )
    return seed


def test_print_connection_needs_the_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--print-connection"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["--print-connection", "--port", "8080", "--host", "10.0.0.1"]) == 2


def test_the_banner_says_it_starts_empty_and_how_to_seed_and_connect(tmp_path: Path) -> None:
    process, url = _start([])
    banner = _stop(process)
    assert "starts EMPTY" in banner
    assert "--seed FILE" in banner
    assert str(SAMPLE_SEED) in banner
    assert "POST /_emulator/instances" in banner
    assert f"--port {url.rsplit(':', 1)[1]} --print-connection" in banner
    assert str(DOCS) in banner
    seeded, _ = _start(["--seed", str(_seed(tmp_path))])
    assert "holds 1 v1 instance(s) and 1 v2 service(s)" in _stop(seeded)


def test_the_readme_seed_example_works_as_written_from_any_directory(tmp_path: Path) -> None:
    """``--seed seed.json`` with no such file here is the sample shipped with the package."""
    process, url = _start(["--port", "0", "--seed", "seed.json"], cwd=tmp_path)
    try:
        state = requests.get(f"{url}/_emulator/state", timeout=5).json()
    finally:
        banner = _stop(process)
    sample = json.loads(SAMPLE_SEED.read_text())
    assert [i["name"] for i in state["instances"]] == [i["name"] for i in sample["instances"]]
    assert [s["name"] for s in state["v2_services"]] == ["catalog", "shop-catalog"]
    assert str(SAMPLE_SEED) in banner
    # The sample is something to work with: a NORMAL instance with images, one being created, v2 items,
    # and an empty v2 service for the v2 examples to fill.
    assert {i["status"] for i in state["instances"]} == {"NORMAL", "CREATION"}
    assert len(state["images"][f"{DEFAULT_PROJECT_ID}/shop-main"]) == 4
    items = {s["name"]: len(s["items"]) for s in state["v2_services"]}
    assert items == {"catalog": 0, "shop-catalog": 3}
    # A seed.json of one's own wins.
    (tmp_path / "seed.json").write_text(json.dumps({"instances": [{"name": "mine"}]}))
    process, url = _start(["--seed", "seed.json", "--quiet"], cwd=tmp_path)
    try:
        names = [i["name"] for i in requests.get(f"{url}/_emulator/state", timeout=5).json()["instances"]]
    finally:
        _stop(process)
    assert names == ["mine"]
    assert main(["--seed", "other.json"]) == 2  # only the sample's own name falls back


def test_the_docs_and_the_sample_seed_ship_inside_the_package() -> None:
    import tomllib

    assert DOCS.is_file()
    assert "# ImageSearch emulator" in DOCS.read_text()
    assert SAMPLE_SEED.is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["airflow_provider_imagesearch"]
    assert {"emulator/README.md", "emulator/seed.json"} <= set(shipped)
