"""The import engine: sends a plan's rows with bounded, adaptive concurrency and records every outcome.

One engine for both APIs: what differs between v1 images and v2 (MMS) data items (the row checks, the
requests, how a check answers) sits behind an :class:`~airflow_provider_imagesearch.imports.apis.ImportApi`
adapter; the names below are v1's, the v2 calls are ``data/add``, ``data/check``, ``data/update`` and
``data/delete``.

Concurrency: a pool of ``max_concurrency`` threads shares the operator's one sync hook: one
``requests.Session`` (its connection pool is widened to the concurrency; urllib3 pools are thread-safe)
and one token (the hook's token cache is shared and locked). Threads suit the work: each request spends
its time waiting on the network with the GIL released, and the hook's retry policy, auth and error
mapping stay exactly those of every other operator. An :class:`AdaptiveLimit` sits in front of the pool:
a 429 halves the number of requests in flight (at most once per ``Retry-After`` window, the same
throttling episode is not counted twice), every success grows it back by one, up to the cap; the
throttled request itself waits its ``Retry-After`` (the hook's retry policy honours it).

Never twice, never lost. Before a batch of rows is sent, their ledger rows are written as ``sending``
intents in one transaction (write-ahead: a worker killed between the service's answer and the ledger
write leaves a row saying the library may hold the path with content of unknown fingerprint, and the
next run overwrites it, or prunes it). Each answer replaces its intent with the outcome, in batches.
``add_image`` is not blindly retried: after an ambiguous failure (5xx, a timeout after sending, a dropped
connection) the row is sent again as an overwrite (a v1 add replaces the path; a v2 add is sent with
``force``), and recorded ``retried``: a check cannot tell whether a present image is this add's or an
older one (the library answers no digest), so a present path is never "reconciled" by its tags. A prune
marks its rows ``pruning`` before their deletes are sent, and forgets only the rows it marked.

Pacing: ``max_rate`` (requests per second, every request of the import: adds, retries, deletes, checks)
is a token bucket shared by all threads, in front of the session; ``deadline`` (the operator's
``time_limit``) stops sending cleanly: rows in flight finish and are recorded, the rest is the next run's.
A request waiting for its token is not sent once the import stops, nor when its turn falls at or after
the deadline (the import then stops at once: no later request's turn is earlier).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_imagesearch.errors import (
    ImageSearchApiError,
    ImageSearchAuthError,
    ImageSearchNotFoundError,
    ImageSearchResponseError,
    ImageSearchServerError,
    ImageSearchThrottledError,
    ImageSearchTransportError,
)
from airflow_provider_imagesearch.imports.apis import V1_IMAGES, ImportApi
from airflow_provider_imagesearch.imports.ledger import RETRIED, SENDING, UNKNOWN_HELD, Ledger, LedgerEntry
from airflow_provider_imagesearch.imports.pacing import RateStopped, RequestRate
from airflow_provider_imagesearch.imports.plan import FORGET, INVALID, PRUNE, UPDATE, Plan, Work, row_list
from airflow_provider_imagesearch.progress import ProgressPacer
from airflow_provider_imagesearch.retry import AMBIGUOUS_RETRY_CAUSES

if TYPE_CHECKING:
    from airflow_provider_imagesearch import api
    from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook
    from airflow_provider_imagesearch.imports.lock import ImportLock

log = logging.getLogger(__name__)

#: v1's codes (each adapter has its own): a refused row is ``invalid``, not sent again unchanged.
REFUSED_ROW_CODES = V1_IMAGES.refused_codes
#: v1's codes that doom every row (no such instance, instance not ready): the import stops.
FATAL_CODES = V1_IMAGES.fatal_codes
#: Sends of one row's add before it is recorded as failed (each after an answer proved it absent).
MAX_ADD_SENDS = 4
FLUSH_ROWS = 200
FLUSH_SECONDS = 1.0
#: Rows whose intents are written in one ledger transaction before their requests go out.
INTENT_BATCH = 200
#: Paths marked ``pruning`` in the ledger at a time, before their deletes are sent.
PRUNE_BATCH = 500


class _Halted(Exception):
    """The import stopped (a fatal error, the time limit) while this row waited: the next run's."""


def _batches(items: Any, size: int) -> Any:
    batch: list[Work] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class AdaptiveLimit:
    """How many requests may be in flight: halved by a 429, grown back by successes, up to ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.limit = cap
        self.in_flight = 0
        self.cuts = 0
        self._quiet_until = 0.0
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> bool:
        with self._cond:
            if self.in_flight >= self.limit and not self._cond.wait_for(
                lambda: self.in_flight < self.limit, timeout
            ):
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def throttled(self, retry_after: float | None) -> None:
        now = time.monotonic()
        with self._cond:
            if now < self._quiet_until:
                return  # the same throttling episode: already halved
            self.limit = max(1, self.limit // 2)
            self.cuts += 1
            self._quiet_until = now + (retry_after if retry_after is not None else 1.0)

    def succeeded(self) -> None:
        with self._cond:
            if self.limit < self.cap:
                self.limit += 1
                self._cond.notify()


@dataclass
class Tally:
    """What one row's requests did: how many were sent, how many after an ambiguous answer."""

    requests: int = 0
    resent: int = 0
    ambiguous: bool = False


@dataclass
class Outcome:
    work: Work
    outcome: str  # added, updated, retried, invalid, failed, pruned, forgotten, prune_failed
    tally: Tally = field(default_factory=Tally)
    error_code: str | None = None
    message: str | None = None


@dataclass
class ImportResult:
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    problem_reasons: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    rows: int = 0
    #: Throttling episodes: each began with a 429 and halved the concurrency (down to one request).
    throttle_cuts: int = 0
    #: Seconds per phase: read, lock_wait, ledger, diff, send (the operator adds its own).
    phases: dict[str, float] = field(default_factory=dict)
    #: Rows and paths left for the next run (the time limit stopped the import first).
    remaining: int = 0
    #: Why prune did not run although asked (a row without a readable key, too many bad rows), or None.
    prune_refused: str | None = None
    shard: tuple[int, int] = (0, 1)
    #: Rows of the other shards' slices that failed the row checks (see ``PlanSummary``).
    other_shards_invalid: int = 0

    def bad_rows(self) -> int:
        """Failed plus invalid rows, as ``max_failed`` counts them: this slice's, and for a sharded
        import the other slices' invalid rows too (every shard checks the whole manifest)."""
        return self.counts["failed"] + self.counts["invalid"] + self.other_shards_invalid

    def describe_bad_rows(self) -> str:
        text = f"{self.bad_rows()} rows failed or were invalid"
        if self.other_shards_invalid:
            text += (
                f" ({self.counts['failed'] + self.counts['invalid']} in this shard, "
                f"{self.other_shards_invalid} invalid in the other shards' slices)"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        keys = ("added", "updated", "unchanged", RETRIED, "pruned", "failed", "invalid", "resent")
        result: dict[str, Any] = {key: int(self.counts[key]) for key in keys}
        # The name earlier releases gave the rows now recorded ``retried`` (DAGs read it).
        result["reconciled"] = result[RETRIED]
        result.update(
            seconds=round(self.seconds, 3),
            rows=self.rows,
            duplicates=self.duplicates,
            throttled=self.throttle_cuts,
            remaining=self.remaining,
            prune_refused=self.prune_refused,
            shard=list(self.shard),
            phases={name: round(value, 3) for name, value in self.phases.items()},
        )
        return result


class ImportEngine:
    """One import run of one instance or service (see the module doc).

    :param hook: the operator's hook (one session, one token).
    :param instance_name: the instance (v1) or service (v2) to import into.
    :param ledger: the instance's ledger.
    :param max_concurrency: the cap on requests in flight.
    :param prune: delete from the library the paths the ledger knows and the manifest no longer has.
    :param logger: where progress goes (the task's log).
    :param api: the API adapter: v1 images (default) or v2 data items.
    :param max_failed: failed plus invalid rows beyond which prune is refused (before any delete); a
        shard also counts the other shards' invalid rows.
    :param max_rate: requests per second at most (None: no pacing but the adaptive limit).
    :param deadline: ``time.monotonic()`` after which no request is sent (the rest is the next run's).
    :param lock: the run's lock: the import stops when it is lost.
    """

    def __init__(
        self,
        hook: ImageSearchHook,
        instance_name: str,
        ledger: Ledger,
        *,
        max_concurrency: int,
        prune: bool,
        logger: logging.Logger | Any = log,
        api: ImportApi = V1_IMAGES,
        max_failed: int | None = None,
        max_rate: float | None = None,
        deadline: float | None = None,
        lock: ImportLock | None = None,
    ) -> None:
        self.hook = hook
        self.max_failed = max_failed
        #: Set when the import stops (a fatal error, the time limit, a lost lock): rows not yet started
        #: are left for the next run, and no request is sent after it.
        self._halt = threading.Event()
        # A request waiting for its token is not sent once the import stops or its time limit comes.
        self.rate = RequestRate(max_rate, stop=self._halt, deadline=deadline) if max_rate else None
        self.deadline = deadline
        self.lock = lock
        #: Why sending stopped early: "time_limit", or None.
        self.stopped: str | None = None
        self.api = api
        self.instance_name = instance_name
        self.ledger = ledger
        self.max_concurrency = max_concurrency
        self.prune = prune
        self.log = logger
        self.limit = AdaptiveLimit(max_concurrency)

    # --- the run ----------------------------------------------------------------------------------

    def run(self, plan: Plan) -> ImportResult:
        started = time.monotonic()
        result = ImportResult(rows=plan.summary.rows, duplicates=plan.summary.duplicates)
        result.shard = (plan.shard_index, plan.shard_count)
        result.other_shards_invalid = plan.summary.other_shards_invalid
        result.duplicate_examples = list(plan.summary.duplicate_examples or [])
        result.counts["unchanged"] = plan.summary.unchanged
        for row in plan.pathless_invalid():
            result.counts["invalid"] += 1
            self._problem(result, row.row, None, "INVALID_ROW", row.invalid or "invalid row")
        if plan.summary.known_invalid:
            # Refused before and unchanged since: still invalid, not sent again.
            result.counts["invalid"] += plan.summary.known_invalid
            result.problem_reasons["known invalid (unchanged since refused)"] += plan.summary.known_invalid
            self._known_invalid_examples(plan, result)
        send, gone = plan.count_work(prune=self.prune)
        total = send + gone
        if plan.summary.duplicates:
            shown = result.duplicate_examples
            self.log.warning(
                "%s manifest rows repeat an earlier path (the last row wins); %s: %s",
                f"{plan.summary.duplicates:,}",
                f"the first {len(shown)} of them" if len(shown) > 1 else "it",
                "; ".join(shown),
            )
        self.log.info(
            "Import into %s%s: %d rows, %d paths, %d unchanged, %d to send, %d to prune, concurrency %d%s",
            self.instance_name,
            f" (shard {plan.shard_index}/{plan.shard_count})" if plan.shard_count > 1 else "",
            plan.summary.rows,
            plan.summary.paths,
            plan.summary.unchanged,
            send,
            gone,
            self.max_concurrency,
            f", at most {self.rate.per_second:g} requests/s" if self.rate else "",
        )
        if total:
            self._prepare_session()
            self._execute(plan, result, total)
        result.seconds = time.monotonic() - started
        result.phases["send"] = result.seconds
        result.throttle_cuts = self.limit.cuts
        return result

    def _prepare_session(self) -> None:
        import requests

        from airflow_provider_imagesearch.imports.pacing import paced_adapter

        session = self.hook.get_conn()
        # One pool, as wide as the concurrency (the hook's default keeps 16 connections); with max_rate,
        # every request of the session (retries included) first takes a token of the shared bucket.
        size = max(16, self.max_concurrency)
        adapter = (
            paced_adapter(self.rate, pool_maxsize=size)
            if self.rate
            else requests.adapters.HTTPAdapter(max_retries=0, pool_maxsize=size)
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def _execute(self, plan: Plan, result: ImportResult, total: int) -> None:
        """Send the plan's work on a thread pool; a row takes a slot of the limit only once it runs.

        At most ``workers`` rows are submitted and not yet collected, so every submitted row has a
        thread: a row waiting for a slot never holds one, and a throttled row that gave its slot back
        can always get one again (taking slots at submission deadlocked: queued rows held every slot
        while the threads slept out their ``Retry-After``). The sends go first, in batches whose intents
        are written before their requests; prune only once every send is answered, and only when the
        bad rows so far are within ``max_failed``.
        """
        done_queue: queue.SimpleQueue[Future[Outcome | None]] = queue.SimpleQueue()
        pending: list[LedgerEntry] = []
        forget: list[str] = []
        state = {"done": 0, "outstanding": 0, "last_flush": time.monotonic()}
        pacer = ProgressPacer(total)
        fatal: list[BaseException] = []

        def collect(block: bool) -> None:
            while True:
                try:
                    future = done_queue.get(block=block, timeout=0.2) if block else done_queue.get_nowait()
                except queue.Empty:
                    break
                block = False
                state["outstanding"] -= 1
                error = future.exception()
                if error is not None:
                    fatal.append(error)
                    self._halt.set()
                    continue
                outcome = future.result()
                if outcome is None:  # not started: the import stopped first
                    continue
                self._account(outcome, result, pending, forget)
                state["done"] += 1
            now = time.monotonic()
            if len(pending) + len(forget) >= FLUSH_ROWS or now - state["last_flush"] >= FLUSH_SECONDS:
                self._flush(pending, forget)
                state["last_flush"] = now
            self._progress(pacer, int(state["done"]), result)

        def stopping() -> bool:
            """Whether no more rows are started (and none waiting is sent): a fatal error, the time
            limit, a lost lock."""
            if self.lock is not None and self.lock.lost and not fatal:
                from airflow_provider_imagesearch.imports.lock import ImportLockLostError

                fatal.append(ImportLockLostError(f"the import lock of {self.instance_name} was taken over"))
            if self.deadline is not None and time.monotonic() >= self.deadline and self.stopped is None:
                self.stopped = "time_limit"
            if fatal or self.stopped:
                self._halt.set()
            return self._halt.is_set()

        # Twice the cap: a throttled row waits out of the limit but still on its thread.
        workers = 2 * self.max_concurrency
        with ThreadPoolExecutor(workers, thread_name_prefix="imagesearch-import") as pool:

            def submit(work: Work) -> None:
                while state["outstanding"] >= workers:
                    collect(block=True)
                future = pool.submit(self._guarded, work)
                state["outstanding"] += 1
                future.add_done_callback(done_queue.put)
                collect(block=False)

            def drain() -> None:
                while state["outstanding"] > 0:
                    stopping()
                    collect(block=True)
                self._flush(pending, forget)

            def record_now(work: Work) -> None:
                outcome = Outcome(work, "invalid" if work.kind == INVALID else "forgotten")
                if work.kind == INVALID:
                    outcome.error_code, outcome.message = "INVALID_ROW", work.row.invalid
                self._account(outcome, result, pending, forget)
                state["done"] += 1

            try:
                for batch in _batches(plan.sends(), INTENT_BATCH):
                    if stopping():
                        break
                    # Write-ahead: the batch's intents in one transaction, before any of its requests.
                    self.ledger.intend(
                        [
                            LedgerEntry(
                                w.key, w.row.path or "", w.row.fingerprint, SENDING, None, None, w.row.row, 0
                            )
                            for w in batch
                            if w.kind != INVALID
                        ]
                    )
                    for work in batch:
                        if work.kind == INVALID:
                            record_now(work)
                        elif not stopping():
                            submit(work)
                drain()
                if self.prune and not stopping():
                    bad = result.bad_rows()
                    if plan.summary.keyless:
                        # Whatever max_failed: the image such a row lists cannot be told apart from one
                        # the manifest dropped, and a prune would delete it.
                        keyless = plan.summary.keyless
                        result.prune_refused = (
                            f"prune refused before any delete: {keyless:,} "
                            f"{'row has' if keyless == 1 else 'rows have'} no readable key (rows "
                            f"{row_list(plan.summary.keyless_rows, keyless)}: a line that does not parse, "
                            f"or no usable {self.api.key_column}), so an image they list could be "
                            "pruned; fix those rows to prune"
                        )
                        self.log.warning("Import into %s: %s", self.instance_name, result.prune_refused)
                    elif self.max_failed is not None and bad > self.max_failed:
                        result.prune_refused = (
                            f"prune refused before any delete: {result.describe_bad_rows()}, more "
                            f"than max_failed={self.max_failed}"
                        )
                        self.log.warning("Import into %s: %s", self.instance_name, result.prune_refused)
                    else:
                        for batch in _batches(plan.prunes(), PRUNE_BATCH):
                            if stopping():
                                break
                            # Marked ``pruning`` (one ledger write per batch) before any of their deletes
                            # is sent: a run killed between a delete and the batched forget leaves no row
                            # claiming the image; only rows this run marked are forgotten.
                            self.ledger.mark_pruning([w.key for w in batch if w.kind == PRUNE])
                            self.ledger.mark_pruning(
                                [w.key for w in batch if w.kind == FORGET], unknown_content=False
                            )
                            for work in batch:
                                if work.kind == FORGET:
                                    record_now(work)
                                elif not stopping():
                                    submit(work)
                        drain()
            finally:
                self._halt.set()  # rows not started yet (an error escaped above) are not started
                pool.shutdown(wait=True)
                collect(block=False)
                self._flush(pending, forget)
        if self.stopped and not fatal:
            result.remaining = max(0, total - int(state["done"]))
            self.log.warning(
                "Import into %s stopped at its time limit: %d rows done, %d left for the next run "
                "(everything sent was recorded)",
                self.instance_name,
                state["done"],
                result.remaining,
            )
        if fatal:
            raise fatal[0]

    def _guarded(self, work: Work) -> Outcome | None:
        """The row's outcome, or None when the import stopped before the row was done (next run's)."""
        while not self.limit.acquire(timeout=0.5):
            if self._halt.is_set():
                return None
        try:
            if self._halt.is_set():
                return None
            return self._process(work)
        except _Halted:
            return None
        except RateStopped:
            # Stopped, or no token is left before the time limit (no later request's slot is earlier):
            # the import has reached its time limit, although the clock has not yet.
            if not self._halt.is_set() and self.stopped is None:
                self.stopped = "time_limit"
            self._halt.set()
            return None
        finally:
            self.limit.release()

    # --- bookkeeping ------------------------------------------------------------------------------

    def _account(
        self, outcome: Outcome, result: ImportResult, pending: list[LedgerEntry], forget: list[str]
    ) -> None:
        work = outcome.work
        kind = outcome.outcome
        result.counts["resent"] += outcome.tally.resent
        if kind in ("pruned", "forgotten"):
            if kind == "pruned":
                result.counts["pruned"] += 1
            forget.append(work.key)
            return
        if kind == "prune_failed":
            result.counts["failed"] += 1
            self._problem(result, None, work.row.path, outcome.error_code or "FAILED", outcome.message or "")
            return
        result.counts[kind] += 1
        if kind in ("invalid", "failed"):
            self._problem(
                result, work.row.row, work.row.path, outcome.error_code or kind, outcome.message or ""
            )
        assert work.row.path is not None
        held = work.held  # invalid: nothing was changed (not sent, or refused)
        if (kind == "failed" and held != work.row.fingerprint) or (
            kind == "invalid" and outcome.tally.ambiguous
        ):
            # The request may have taken effect, or not: the old content, the new or none.
            held = UNKNOWN_HELD
        pending.append(
            LedgerEntry(
                path_key=work.key,
                path=work.row.path,
                fingerprint=work.row.fingerprint,
                outcome=kind,
                error_code=outcome.error_code,
                # PostgreSQL text cannot hold NUL: a service message or an OS error could carry one.
                error_message=(outcome.message or None) and outcome.message.replace("\x00", "")[:1000],
                row_number=work.row.row,
                attempts=outcome.tally.requests,
                held=held,
            )
        )

    def _known_invalid_examples(self, plan: Plan, result: ImportResult) -> None:
        """Name them in the summary like this run's problems: row, path, and the reason stored then."""
        room = 10 - len(result.problems)
        if room <= 0:
            return
        examples = plan.known_invalid_examples(room)
        errors = self.ledger.errors([key for _, _, key in examples])
        for row, path, key in examples:
            code, message = errors.get(key, (None, None))
            text = f"{code or 'INVALID_ROW'} {message or ''}".strip()
            result.problems.append(f"row {row} ({path!r}, unchanged since refused): {text}"[:400])

    @staticmethod
    def _problem(result: ImportResult, row: int | None, path: str | None, code: str, message: str) -> None:
        result.problem_reasons[code] += 1
        if len(result.problems) < 10:
            where = f"row {row}" if row else "ledger"
            result.problems.append(f"{where} ({path!r}): {code} {message}".strip()[:400])

    def _flush(self, pending: list[LedgerEntry], forget: list[str]) -> None:
        if pending:
            self.ledger.record(pending)
            pending.clear()
        if forget:
            self.ledger.forget(forget)
            forget.clear()

    def _progress(self, pacer: ProgressPacer, done: int, result: ImportResult) -> None:
        line = pacer.due(done)
        if line is None:
            return
        self.log.info(
            "Import progress: %d/%d (%d%%), %.1f rows/s, ETA %s, %d failed, %d invalid, concurrency %d",
            line.done,
            line.total,
            line.percent,
            line.rate,
            line.eta,
            result.counts["failed"],
            result.counts["invalid"],
            self.limit.limit,
        )

    # --- one row ----------------------------------------------------------------------------------

    def _call(self, request: api.ApiRequest, tally: Tally) -> Any:
        """One request; a 429 gives the request's slot back while it waits out ``Retry-After``.

        The hook's own retry would sleep holding the slot: at a 5% throttle rate and a 0.2 s
        ``Retry-After`` that idles a sixth of the pool. Here the wait happens outside the limit, so the
        other rows keep it busy (at the halved concurrency the 429 asked for). Throttling is waited out
        for up to the retry policy's ``max_elapsed`` (connection extra ``retry_max_elapsed``, default
        120 s) per request, not a number of attempts: a 429 says "later", not "never".
        """
        policy = self.hook.settings.retry
        throttles = 0
        throttled_since: float | None = None
        while True:
            if self._halt.is_set():
                raise _Halted  # the import stopped: no request after a fatal error
            causes: Counter[str] = Counter()
            tally.requests += 1
            try:
                answer = self.hook.call(request, causes=causes, retry_throttled=False)
            except ImageSearchThrottledError as error:
                self._count_retries(causes, tally)
                self.limit.throttled(error.retry_after)
                throttles += 1
                now = time.monotonic()
                throttled_since = now if throttled_since is None else throttled_since
                wait = self._throttle_wait(error.retry_after, throttles)
                if now + wait - throttled_since > policy.max_elapsed:
                    raise
                self._wait_outside_limit(wait)
                continue
            except BaseException:
                self._count_retries(causes, tally)
                raise
            self._count_retries(causes, tally)
            self.limit.succeeded()
            return answer

    @staticmethod
    def _count_retries(causes: Counter[str], tally: Tally) -> None:
        """Add the hook's own retries of a call to the row's tally.

        A retry after an ambiguous answer (a 5xx, a timeout after sending, a dropped connection: the
        hook retries those for idempotent calls, which every v2 import add is, being sent with
        ``force``) may follow an attempt the service processed: it is a resend like the engine's own,
        counted in XCom ``resent``, and makes the row's outcome ``retried``.
        """
        tally.requests += causes.total()
        ambiguous = sum(causes[cause] for cause in AMBIGUOUS_RETRY_CAUSES)
        if ambiguous:
            tally.resent += ambiguous
            tally.ambiguous = True

    def _throttle_wait(self, retry_after: float | None, throttles: int) -> float:
        policy = self.hook.settings.retry
        if retry_after is not None:
            return min(retry_after, policy.max_retry_after)
        return min(policy.backoff_initial * 2 ** (throttles - 1), policy.backoff_max)

    def _wait_outside_limit(self, seconds: float) -> None:
        """Sleep out a 429 without a slot; returns holding one again (raises _Halted if the import stopped)."""
        self.limit.release()
        try:
            self._halt.wait(seconds)
        finally:
            while not self.limit.acquire(timeout=1.0):
                pass
        if self._halt.is_set():
            raise _Halted

    def _project(self) -> str:
        return self.hook._project_after_settings(None)

    def _process(self, work: Work) -> Outcome:
        tally = Tally()
        try:
            if work.kind == PRUNE:
                return self._prune(work, tally)
            return self._send(work, tally)
        except ImageSearchApiError as error:
            if (
                isinstance(error, ImageSearchAuthError | ImageSearchNotFoundError)
                or error.error_code in self.api.fatal_codes
            ):
                raise
            if work.kind == PRUNE:
                return Outcome(work, "prune_failed", tally, error.error_code, error.error_msg)
            if error.error_code in self.api.refused_codes:
                return Outcome(work, "invalid", tally, error.error_code, error.error_msg)
            return Outcome(work, "failed", tally, error.error_code, error.error_msg)
        except OSError as error:  # the row's file went away between planning and sending
            return Outcome(work, "failed", tally, "FILE_ERROR", f"{type(error).__name__}: {error}")

    def _send(self, work: Work, tally: Tally) -> Outcome:
        """Add (or update) a row; after an ambiguous answer, send it again as an overwrite.

        A check after an ambiguous add cannot tell this add's image from an older one at the same path
        (a run killed before its ledger write, a dropped ledger, a foreign add): the library answers no
        digest. So the row is sent again: a v1 add replaces the path whole, a v2 add goes with
        ``force``, an update is idempotent. Never more than :data:`MAX_ADD_SENDS` sends.
        """
        row = work.row
        assert row.path is not None
        success = "updated" if work.kind == UPDATE else "added"
        if work.kind == UPDATE:
            request = self.api.update_request(self._project(), self.instance_name, row, work.held)
        else:
            request = self.api.add_request(self._project(), self.instance_name, row)
        last: ImageSearchApiError | None = None
        for send in range(MAX_ADD_SENDS):
            if send and tally.ambiguous:
                tally.resent += 1
            try:
                self._call(request, tally)
                return Outcome(work, RETRIED if tally.ambiguous else success, tally)
            except (ImageSearchServerError, ImageSearchTransportError, ImageSearchResponseError) as error:
                last = error
                if isinstance(error, ImageSearchTransportError) and not getattr(error, "request_sent", True):
                    continue  # it never reached the service: sending it again is plain
                tally.ambiguous = True
                self.log.debug(
                    "The request of row %d was ambiguous (%s): sending it again (an overwrite)",
                    row.row,
                    error.error_code,
                )
        assert last is not None
        raise last

    def _prune(self, work: Work, tally: Tally) -> Outcome:
        path = work.row.path
        assert path is not None
        try:
            self._call(self.api.delete_request(self._project(), self.instance_name, path), tally)
        except ImageSearchApiError as error:
            if error.status is None or not 400 <= error.status < 500 or error.status == 429:
                raise
            if isinstance(error, ImageSearchAuthError) or error.error_code in self.api.fatal_codes:
                raise
            if self.api.is_present(
                self._call(self.api.check_request(self._project(), self.instance_name, path), tally)
            ):
                raise
        return Outcome(work, "pruned", tally)


ProgressLogger = Callable[..., None]
