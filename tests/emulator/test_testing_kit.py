"""The testing kit as a user meets it: a fresh project, a DAG file, a two-line conftest.py, pytest.

The user-style tests run in a subprocess with a clean environment: no ``AIRFLOW_*`` variable, a HOME of
their own (so ``~/airflow`` is theirs to check), and HTTP(S)_PROXY pointing at a trap that records any
connection, so a request that tried to leave the machine through a proxy would be seen. The example files
are the ones docs/emulator.rst includes (``docs/examples/testing``).
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_imagesearch.testing import (
    HuaweiCloudGuard,
    PublicHostBlockedError,
    emulated_imagesearch,
    image_digest,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples" / "testing"
#: What a user writes: exactly two lines.
TWO_LINE_CONFTEST = '# conftest.py\npytest_plugins = ["airflow_provider_imagesearch.testing"]\n'


class ProxyTrap:
    """A TCP listener standing in for an HTTP(S) proxy: records every connection, answers nothing."""

    def __init__(self) -> None:
        self.connections: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    self.connections.append(connection.recv(4096))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def proxy_trap() -> Iterator[ProxyTrap]:
    trap = ProxyTrap()
    yield trap
    trap.close()


def _user_environment(home: Path, proxy: str) -> dict[str, str]:
    """A user's shell: no Airflow settings, no connections, no PYTHONPATH to this repo; a proxy set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "PYTEST"))}
    env.update(HOME=str(home), HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy)
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    return env


def _user_project(tmp_path: Path) -> Path:
    project = tmp_path / "my-project"
    project.mkdir()
    for name in ("shop_images_dag.py", "test_shop_images_dag.py", "unittest_example.py"):
        shutil.copy(EXAMPLES / name, project / name)
    (project / "conftest.py").write_text(TWO_LINE_CONFTEST)
    return project


def _plugins_of(path: Path) -> Any:
    """The value ``pytest_plugins`` is assigned in a conftest file."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [
            "pytest_plugins"
        ]:
            return ast.literal_eval(node.value)
    return None


def test_a_users_project_runs_its_dag_against_the_kit_with_no_other_setup(
    tmp_path: Path, proxy_trap: ProxyTrap
) -> None:
    project = _user_project(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    # The docs' conftest.py says the same as the user's two lines.
    assert _plugins_of(EXAMPLES / "conftest.py") == _plugins_of(project / "conftest.py")
    assert len((project / "conftest.py").read_text().splitlines()) == 2
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=project,
        env=_user_environment(home, proxy_trap.url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "4 passed" in output, output[-3000:]
    for name in (
        "test_the_dag_adds_the_image_and_finds_it",
        "test_the_dag_rides_out_a_throttled_and_a_failing_call",
        "test_the_dag_fails_when_the_instance_is_missing",
        "test_no_request_can_reach_huawei_cloud",
    ):
        assert f"PASSED test_shop_images_dag.py::{name}" in output, output[-3000:]
    assert "Airflow home is a temporary sandbox" in output
    # Nothing went through the proxy (the emulator is on loopback; Huawei hosts are refused first), and
    # the user's own ~/airflow was not touched.
    assert proxy_trap.connections == []
    assert not (home / "airflow").exists()


def test_the_context_manager_serves_a_unittest_suite(tmp_path: Path, proxy_trap: ProxyTrap) -> None:
    project = _user_project(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "unittest_example"],
        cwd=project,
        env=_user_environment(home, proxy_trap.url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "test_reads_the_instance" in output
    assert "OK" in output
    assert proxy_trap.connections == []
    assert not (home / "airflow").exists()


def test_the_plugin_is_never_loaded_on_its_own(request: pytest.FixtureRequest) -> None:
    """Opt-in: no ``pytest11`` entry point, so installing the provider adds no fixture to anyone's tests."""
    dist = metadata.distribution("airflow-provider-imagesearch")
    assert [e for e in dist.entry_points if e.group == "pytest11"] == []
    # This suite does not opt in: the kit's fixture does not exist here.
    with pytest.raises(pytest.FixtureLookupError):
        request.getfixturevalue("imagesearch_emulator")


# --- the helpers, in this process ------------------------------------------------------------------------
def test_seeding_helpers_are_what_the_provider_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
    with emulated_imagesearch(auth="token") as kit:
        kit.add_instance("shop-main", tags=["color"])
        kit.add_image("shop-main", "https://b.obs.cn-north-4.myhuaweicloud.com/a.jpg", tags={"color": "red"})
        kit.add_image("shop-main", "bytes-only", image=png)
        kit.add_v2_service("catalog", custom_tags=["color"])
        kit.add_v2_item("catalog", "sku-1", image=png, desc="red shoe", custom_tags={"color": "red"})
        kit.add_v2_item("catalog", "sku-2", image_url="https://cdn.example/2.jpg", keywords=["bag"])
        hook = ImageSearchHook()
        import base64

        encoded = base64.b64encode(png).decode()
        hits = hook.search_images("shop-main", file_base64=encoded).hits
        assert (hits[0].path, hits[0].similarity) == ("bytes-only", 1.0)
        assert len(hits) == 2  # add_image keeps the instance's other images
        found = hook.search_data("catalog", image_base64=encoded)
        assert (found.items[0].id, found.items[0].score) == ("sku-1", 1.0)
        assert [i.id for i in hook.search_data("catalog", search_type="KEYWORD", keywords=["bag"]).items] == [
            "sku-2"
        ]
        assert kit.images("shop-main")["bytes-only"] == {}
        assert kit.v2_items("catalog")["sku-1"]["digest"] == image_digest(png)
        assert kit.instance("shop-main")["status"] == "NORMAL"
        assert [r["auth"] for r in kit.api_requests()] == ["token"] * 3
        assert kit.requests("/image/search")[0]["status"] == 200


def test_faults_log_reset_and_own_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_imagesearch.errors import ImageSearchApiError, ImageSearchServerError
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

    with emulated_imagesearch(auth="aksk", max_attempts=2) as kit:
        kit.add_instance("lib")
        kit.fail_next("503_json", "503_json")
        with pytest.raises(ImageSearchServerError):
            ImageSearchHook().get_instance("lib")
        assert [(r["status"], r["fault"]) for r in kit.requests()] == [(503, "503_json")] * 2
        kit.answer_own_codes_as("X.0001")
        with pytest.raises(ImageSearchApiError) as info:
            ImageSearchHook().create_instance("lib")
        assert info.value.error_code == "X.0001"
        kit.reset()
        assert kit.instance("lib") is None  # back to the start: empty
        assert kit.requests() == []
        kit.add_instance("lib")
        with pytest.raises(ImageSearchApiError) as info:
            ImageSearchHook().create_instance("lib")
        assert info.value.error_code == "IS.9001"  # reset also dropped own_codes_as


def test_the_context_manager_restores_the_environment_and_the_resolver() -> None:
    name = "AIRFLOW_CONN_KIT_CHECK"
    original = socket.getaddrinfo
    os.environ.pop(name, None)
    with emulated_imagesearch(conn_id="kit_check") as kit:
        assert kit.url in os.environ[name]
        assert socket.getaddrinfo is not original
        with pytest.raises(PublicHostBlockedError):
            socket.getaddrinfo("mms.cn-north-4.myhuaweicloud.com", 443)
        with pytest.raises(requests.ConnectionError, match="imagesearch testing kit"):
            requests.get("https://imagesearch.ap-southeast-1.myhuaweicloud.com/", timeout=5)
        assert socket.getaddrinfo("127.0.0.1", 80)  # loopback resolves as usual
        assert kit.blocked_hosts == [
            "mms.cn-north-4.myhuaweicloud.com",
            "imagesearch.ap-southeast-1.myhuaweicloud.com",
        ]
    assert name not in os.environ
    assert socket.getaddrinfo is original


@pytest.mark.parametrize(
    ("host", "blocked"),
    [
        ("iam.myhuaweicloud.com", True),
        ("IAM.CN-NORTH-4.MYHUAWEICLOUD.COM.", True),
        ("obs.cn-north-4.myhuaweicloud.cn", True),
        ("support.huaweicloud.com", True),
        # Spellings the resolver's IDNA encoding reads as the same host: other full stops, full-width letters.
        ("iam.cn-north-4.myhuaweicloud\u3002com", True),
        ("iam\uff0emyhuaweicloud\uff61com", True),
        ("\uff29\uff21\uff2d.myhuaweicloud.com", True),
        ("myhuaweicloud\u3002com.example.org", False),
        ("myhuaweicloud.com.example.org", False),
        ("notmyhuaweicloud.com", False),
        ("127.0.0.1", False),
    ],
)
def test_the_guard_knows_huawei_cloud_hosts(host: str, blocked: bool) -> None:
    with HuaweiCloudGuard() as guard:
        if blocked:
            with pytest.raises(PublicHostBlockedError):
                socket.gethostbyname(host)
        else:
            try:
                socket.gethostbyname(host)
            except PublicHostBlockedError:  # pragma: no cover - the failure this test looks for
                pytest.fail(f"{host} was refused")
            except OSError:
                pass  # not resolvable here: fine, it was not the guard
        assert guard.blocked == ([host] if blocked else [])


def test_the_docs_include_only_the_examples_these_tests_run() -> None:
    """docs/emulator.rst shows code only from files the user-style tests above execute, marker by marker."""
    import re

    rst = (REPO / "docs" / "emulator.rst").read_text()
    includes = re.findall(r"\.\. literalinclude:: (\S+)((?:\n    :[^\n]*)*)", rst)
    assert len(includes) >= 6
    executed = {"conftest.py", "shop_images_dag.py", "test_shop_images_dag.py", "unittest_example.py"}
    for target, options in includes:
        path = REPO / "docs" / target
        assert path.is_file(), target
        assert path.parent == EXAMPLES, target
        assert path.name in executed, target
        text = path.read_text()
        for marker in re.findall(r":(?:start-after|end-before): (.+)", options):
            assert text.count(marker.strip()) == 1, (target, marker)
