"""Reliability and security suite: every test is audited for leaked secrets at teardown.

The autouse ``audit`` fixture captures, for each test, every log record reaching the root logger (the
provider's loggers are lowered to DEBUG so nothing of theirs is filtered out first), stdout and stderr
at the file-descriptor level (``capfd``: Airflow's structlog output, ``dag.test()`` console output,
print), plus whatever the test registers (exceptions with their chains, XCom values, connection-test
messages). At teardown all of it is searched for the emulator's password, secret keys, security token,
ready token and every IAM token issued in the session (any 24-character fragment of one counts). It
checks the text itself: ``dag.test()`` does not mask secrets, and this suite does not rely on masking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_imagesearch.hooks import imagesearch as hook_module
from tests.reliability.support import ISSUED_TOKENS, SecretAudit, issued_tokens, logger_levels

PROVIDER_LOGGER = "airflow_provider_imagesearch"


@pytest.fixture(autouse=True)
def audit(
    request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretAudit]:
    audit = SecretAudit(capfd=capfd)
    original = hook_module.parse_token_response

    def recording_parse(*args: Any, **kwargs: Any) -> Any:
        token = original(*args, **kwargs)
        ISSUED_TOKENS.add(token.value)
        return token

    # Client-side record of every token the hooks received (also those the emulator later forgets).
    monkeypatch.setattr(hook_module, "parse_token_response", recording_parse)
    root = logging.getLogger()
    root.addHandler(audit.handler)
    try:
        with logger_levels({PROVIDER_LOGGER: logging.DEBUG}):
            yield audit
    finally:
        root.removeHandler(audit.handler)
    if "emulator_session" in request.fixturenames:
        audit.watch(request.getfixturevalue("emulator_session"))
    for emulator in audit.emulators:
        ISSUED_TOKENS.update(issued_tokens(emulator))
    out, err = capfd.readouterr()
    leaks = audit.leaks([("stdout", out), ("stderr", err)])
    assert not leaks, "secrets leaked:\n" + "\n".join(sorted(set(leaks))[:20])
