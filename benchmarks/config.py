"""Figure sizes: the issue's (full run) and tiny ones (``--smoke``, so CI keeps the suite working)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """How big each figure is.

    :param calls: calls per variant in the call-overhead figures (interleaved).
    :param warmup_calls: untimed calls per variant first (connections, imports, caches).
    :param token_calls: calls in the token-reuse figure.
    :param token_hooks: hook instances they are spread over.
    :param token_threads: threads making them (the first calls race for the token).
    :param triggers: triggers run at once in the deferral figure.
    :param poll_interval: their poll interval, in seconds.
    :param parse_repeats: fresh interpreters per module in the DAG-parse figure (the median is kept).
    :param archive_rows: detail rows archived per repetition.
    :param archive_repeats: interleaved repetitions of (archive path, plain executemany) per database.
    :param fleet_instances: instances in the bulk-read and fleet-trigger figures.
    :param bulk_latency: seconds of emulator latency per read in the bulk-read figure.
    :param fleet_poll_interval: the fleet trigger's poll interval, in seconds.
    :param fleet_transition: seconds after the start at which the fleet's instances turn NORMAL.
    :param import_rows: manifest rows in the bulk-import figures.
    :param import_diff_rows: manifest rows diffed against a full ledger in the import memory figure.
    :param ui_instances: instances in the archive behind the UI-page figure.
    :param ui_snapshots: archive runs (snapshots per instance) behind it.
    :param ui_ledger_rows: import-ledger rows behind it.
    :param ui_repeats: interleaved repetitions of (page, plain SELECT) per page and database.
    :param import_paced_rows: rows imported at ``max_rate`` (:data:`~benchmarks.fig_import.PACED_RATE`).
    :param import_shard_rows: rows imported by one run, then by four shards at once.
    """

    calls: int
    warmup_calls: int
    token_calls: int
    token_hooks: int
    token_threads: int
    triggers: int
    poll_interval: float
    parse_repeats: int
    archive_rows: int
    archive_repeats: int
    fleet_instances: int = 1000
    bulk_latency: float = 0.05
    fleet_poll_interval: float = 2.0
    fleet_transition: float = 3.5
    import_rows: int = 10_000
    import_diff_rows: int = 1_000_000
    ui_instances: int = 1000
    ui_snapshots: int = 100
    ui_ledger_rows: int = 1_000_000
    ui_repeats: int = 5
    import_paced_rows: int = 20_000
    import_shard_rows: int = 20_000


FULL = Sizes(
    calls=2000,
    warmup_calls=50,
    token_calls=1000,
    token_hooks=50,
    token_threads=10,
    triggers=1000,
    poll_interval=2.0,
    parse_repeats=5,
    archive_rows=100_000,
    archive_repeats=3,
)

SMOKE = Sizes(
    calls=100,
    warmup_calls=10,
    token_calls=100,
    token_hooks=10,
    token_threads=5,
    triggers=20,
    poll_interval=0.2,
    parse_repeats=1,
    archive_rows=2_000,
    archive_repeats=1,
    fleet_instances=30,
    bulk_latency=0.01,
    fleet_poll_interval=0.2,
    fleet_transition=0.35,
    import_rows=300,
    import_diff_rows=5_000,
    ui_instances=30,
    ui_snapshots=4,
    ui_ledger_rows=5_000,
    ui_repeats=1,
    import_paced_rows=400,
    import_shard_rows=400,
)
