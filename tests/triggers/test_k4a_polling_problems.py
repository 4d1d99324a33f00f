"""The status watchers' shared poll loop (``poll_rounds``) when a round fails, as the triggerer's log and the
service show it: the warning a failed round logs tells the whole story (what the watchers do about it), and
a round that failed on the service's answers goes on with the connection it read, while a round whose
credentials were refused reads the connection again, so an edit of it is picked up then.

The loop runs as in ``test_trigger_poll_rounds`` (its helpers are reused): waits scripted, one read at a
time, the hook's own retries off.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_imagesearch.emulator import Emulator
from tests.support.scripted_waits import ScriptedWaits
from tests.triggers.test_trigger_poll_rounds import CONN, _rounds, _target
from tests.triggers.test_trigger_poll_rounds import conn as conn  # the fixtures
from tests.triggers.test_trigger_poll_rounds import logged as logged
from tests.triggers.test_trigger_poll_rounds import waits as waits


def test_a_failed_round_warns_what_the_watchers_do_about_it(
    conn: str, emulator: Emulator, waits: ScriptedWaits, logged: list[str]
) -> None:
    emulator.upsert_instance("k4a-pl-a", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json"])
    _rounds(_target(), ["k4a-pl-a"], 2)
    [line] = [line for line in logged if line.startswith("ImageSearch round failed")]
    assert line.startswith(
        f"ImageSearch round failed (connection {CONN!r}, 1 round(s) in a row, 0 of 1 instance(s) not read): "
        "ImageSearchError: every read failed, e.g. "
    )
    assert line.endswith(
        ". Watchers keep the statuses they know, fire nothing for this round, and compare the next reading "
        "with what they know."
    )


def test_an_unreadable_answer_keeps_the_connection_and_a_refusal_of_the_credentials_reads_it_again(
    conn: str,
    emulator: Emulator,
    waits: ScriptedWaits,
    imagesearch_conn: Callable[..., str],
) -> None:
    """Round 1's only read is answered with a body that cannot be read (a service problem, not the
    connection's); the connection is then edited to use an access key. Round 2 still reads with the token
    the loop read first; its read is refused (403, the credentials' refusal), so round 3 reads the edited
    connection and uses the access key."""
    emulator.upsert_instance("k4a-pl-b", status="NORMAL")
    emulator.set_faults(sequence=["truncated_json", "403"])
    waits.changes.append(lambda: imagesearch_conn("aksk", conn_id=CONN, max_attempts=1))
    first, third = _rounds(_target(), ["k4a-pl-b"], 2)

    assert (first.number, third.number) == (1, 3)
    reads = [(r["status"], r["auth"]) for r in emulator.requests_log() if r.get("instance") == "k4a-pl-b"]
    assert reads == [(200, "token"), (403, "token"), (200, "aksk")]
