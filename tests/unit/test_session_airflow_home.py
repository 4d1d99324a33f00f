"""A pytest session removes the Airflow home tests/conftest.py made for it when it exits (found by review 8:
every ``make test`` stream and every mutation ``check`` left one in the temporary folder, 1,715 of them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.not_in_mutation_run


def test_a_session_leaves_no_airflow_home_behind(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    seen = tmp_path / "seen"
    # A one-test session of this repository's conftest, which records the home it was given.
    (tmp_path / "tests" / "test_home.py").write_text(
        f"import os\ndef test_home():\n    open({str(seen)!r}, 'w').write(os.environ['AIRFLOW_HOME'])\n"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--confcutdir={REPO}",
            "--rootdir",
            str(REPO),
            str(REPO / "tests" / "conftest.py"),
            str(tmp_path / "tests" / "test_home.py"),
        ],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    home = Path(seen.read_text())
    assert home.parent == scratch
    assert not home.exists(), "the session's Airflow home outlived it"
