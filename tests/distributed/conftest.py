"""One CeleryExecutor deployment for the whole module: starting it costs about a minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.distributed.deployment import Deployment, deployment
from tests.distributed.scenario import INSTANCES, emulator_seed, wait_ready


@pytest.fixture(scope="module")
def celery_deployment() -> Iterator[Deployment]:
    with deployment(emulator_seed(INSTANCES)) as deploy:
        wait_ready(deploy)
        yield deploy
