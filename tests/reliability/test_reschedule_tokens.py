"""What reschedule mode costs in IAM tokens (issue 14): every poke is a new process with an empty cache.

Measured, not assumed: each poke below runs in its own interpreter, as Airflow runs each reschedule of a
sensor. With IAM password auth each one asks IAM for a token; with AK/SK none does; deferrable mode
(one process, the triggerer, for the whole wait) asks once. The README's advice rests on these numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from airflow_provider_imagesearch.emulator import Emulator
from tests.reliability.support import SecretAudit
from tests.support.connections import env_name

POKES = 2
POKE = (
    "from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook\n"
    "ImageSearchHook('{conn_id}').get_instance('resched')\n"
)


@pytest.mark.parametrize(("auth", "tokens_per_poke"), [("iam_password", 1), ("aksk", 0)])
def test_each_reschedule_poke_in_its_own_process(
    auth: str,
    tokens_per_poke: int,
    imagesearch_conn: Callable[..., str],
    emulator: Emulator,
    audit: SecretAudit,
) -> None:
    emulator.upsert_instance("resched", status="CREATION", transition_after_s=3600.0, next_status="NORMAL")
    conn_id = imagesearch_conn(auth, conn_id=f"resched_{auth}")
    env = {**os.environ, env_name(conn_id): os.environ[env_name(conn_id)]}
    for _ in range(POKES):
        subprocess.run(
            [sys.executable, "-c", POKE.format(conn_id=conn_id)],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    stats = emulator.stats()
    audit.figure(f"reschedule pokes ({auth})", pokes=POKES, token_requests=stats["token_requests"])
    assert stats["token_requests"] == POKES * tokens_per_poke
    assert json.dumps(stats["by_route"]).count("service/{instance_name}") == 1
