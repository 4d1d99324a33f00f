"""The emulator side of the benchmarks: start it, measure its own capacity, meter it per figure.

Each figure that talks to the emulator reports the emulator's request rate while the figure ran (from
``/_emulator/stats`` and the request log), next to the emulator's capacity measured at the start of the
run with a minimal raw-socket client. A figure whose rate is close to the capacity is limited by the
emulator, not by the provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_imagesearch.emulator import DEFAULT_PROJECT_ID, DEFAULT_READY_TOKEN
from airflow_provider_imagesearch.emulator.client import EmulatorClient

if TYPE_CHECKING:
    from airflow_provider_imagesearch.emulator.runner import EmulatorProcess

#: The instance every call figure reads (NORMAL, never changes).
BENCH_INSTANCE = "bench"
#: Peak rates are counted over windows of this many seconds.
PEAK_WINDOW_S = 0.5
#: The emulator keeps the last 50,000 requests; beyond that the peak cannot be computed.
REQUEST_LOG_SIZE = 50_000


def instance_path(name: str = BENCH_INSTANCE, project_id: str = DEFAULT_PROJECT_ID) -> str:
    return f"/v1/{project_id}/service/{name}"


def start_emulator() -> EmulatorProcess:
    """The emulator in its own process (no shared GIL), with the ``bench`` instance."""
    from airflow_provider_imagesearch.emulator.runner import EmulatorProcess

    emulator = EmulatorProcess()
    emulator.start()
    try:
        emulator.upsert_instance(BENCH_INSTANCE, project_id=DEFAULT_PROJECT_ID, tags=["color"])
    except BaseException:
        emulator.stop()
        raise
    return emulator


@dataclass(frozen=True)
class Capacity:
    """Requests per second the emulator serves to a client that costs (almost) nothing."""

    sequential_rps: float
    pipelined_rps: float

    def to_dict(self) -> dict[str, float]:
        return {
            "sequential_rps": round(self.sequential_rps, 1),
            "pipelined_rps": round(self.pipelined_rps, 1),
        }


async def _raw_worker(host: str, port: int, request: bytes, count: int, batch: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        done = 0
        while done < count:
            size = min(batch, count - done)
            writer.write(request * size)
            await writer.drain()
            for _ in range(size):
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"capacity probe got {head[:40]!r}")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            done += size
    finally:
        writer.close()
        await writer.wait_closed()


async def _raw_load(url: str, total: int, connections: int, batch: int) -> float:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"not an emulator URL: {url}")
    request = (
        f"GET {instance_path()} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Auth-Token: {DEFAULT_READY_TOKEN}\r\n"
        f"X-Project-Id: {DEFAULT_PROJECT_ID}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    per_connection = max(total // connections, 1)
    started = time.perf_counter()
    await asyncio.gather(
        *(_raw_worker(parts.hostname, parts.port, request, per_connection, batch) for _ in range(connections))
    )
    return per_connection * connections / (time.perf_counter() - started)


def measure_capacity(url: str, *, smoke: bool = False) -> Capacity:
    """Sequential (one request in flight, like the sync hook) and pipelined (4 connections) capacity."""
    scale = 10 if smoke else 1
    sequential = asyncio.run(_raw_load(url, 3000 // scale, 1, 1))
    pipelined = asyncio.run(_raw_load(url, 16000 // scale, 4, 32))
    EmulatorClient(url).reset_stats()
    return Capacity(sequential, pipelined)


def peak_rate(timestamps: list[float], window: float = PEAK_WINDOW_S) -> float | None:
    """Highest request rate over any ``window`` seconds (None when the figure was shorter)."""
    if len(timestamps) < 2:
        return None
    ordered = sorted(timestamps)
    if ordered[-1] - ordered[0] < window:
        return None
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best / window


class Meter:
    """Emulator counters for one figure: :meth:`start` zeroes them, :meth:`read` returns the summary."""

    def __init__(self, url: str, capacity: Capacity | None = None) -> None:
        self.control = EmulatorClient(url, timeout=60.0)
        self.capacity = capacity

    def start(self) -> None:
        self.control.reset_stats()

    def read(self, *, with_log: bool = True) -> dict[str, Any]:
        stats = self.control.stats()
        summary: dict[str, Any] = {
            "requests": stats["requests_total"],
            "rps": stats["requests_per_second"],
            "window_s": stats["since_reset_s"],
            "by_status": stats["by_status"],
            "token_requests": stats["token_requests"],
        }
        if with_log and 0 < stats["requests_total"] <= REQUEST_LOG_SIZE:
            log = self.control.requests_log()
            summary["peak_rps"] = peak_rate([entry["ts"] for entry in log])
            summary["log"] = log
        if self.capacity is not None:
            summary["capacity"] = self.capacity.to_dict()
        return summary


def public(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the raw request log (for results and JSON)."""
    return {key: value for key, value in summary.items() if key != "log"}
