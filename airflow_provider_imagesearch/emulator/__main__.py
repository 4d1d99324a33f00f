"""``python -m airflow_provider_imagesearch.emulator`` / ``imagesearch-emulator``: run the emulator.

Prints exactly one line to stdout once it accepts connections, ``IMAGESEARCH_EMULATOR_URL=http://...``,
so a parent process can wait for it; everything else (banner, errors) goes to stderr. Stops on
SIGTERM/SIGINT (and, with ``--exit-with-parent``, when stdin closes), saving ``--state`` first. Exit codes: 0 clean stop, 1 could not listen, 2 bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.faults import FaultConfig, FaultConfigError
from airflow_provider_imagesearch.emulator.server import EmulatorServer, NotLoopbackError
from airflow_provider_imagesearch.emulator.state import SeedError, load_json_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagesearch-emulator",
        description="Local emulator of the Huawei Cloud ImageSearch v1 API and the IAM token endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--seed", metavar="FILE", help="JSON seed: projects, users, keys, instances, images")
    parser.add_argument(
        "--state", metavar="FILE", help="load state from FILE if it exists; save it on shutdown"
    )
    parser.add_argument("--token-lifetime", type=float, default=86400.0, metavar="SECONDS")
    parser.add_argument("--creation-seconds", type=float, default=5.0, metavar="S", help="CREATION -> NORMAL")
    parser.add_argument("--deletion-seconds", type=float, default=5.0, metavar="S", help="DELETING -> gone")
    parser.add_argument(
        "--faults", metavar="JSON", help="fault config as JSON text, e.g. '{\"drop_rate\": 0.1}'"
    )
    parser.add_argument("--quiet", action="store_true", help="no banner on stderr")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop (cleanly) when stdin reaches EOF; EmulatorProcess uses it so that even a parent killed "
        "with SIGKILL does not leave the emulator behind",
    )
    return parser


def _fail(message: str, code: int = 2) -> int:
    print(f"imagesearch-emulator: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        seed = load_json_file(args.seed) if args.seed else None
        faults = FaultConfig.from_dict(json.loads(args.faults)) if args.faults else None
        server = EmulatorServer(
            host=args.host,
            port=args.port,
            seed=seed,
            faults=faults,
            token_lifetime=args.token_lifetime,
            creation_seconds=args.creation_seconds,
            deletion_seconds=args.deletion_seconds,
            state_file=args.state,
        )
    except NotLoopbackError as exc:
        return _fail(str(exc))
    except (OSError, ValueError, SeedError, FaultConfigError) as exc:
        return _fail(f"{type(exc).__name__}: {exc}")
    return asyncio.run(_serve(server, quiet=args.quiet, exit_with_parent=args.exit_with_parent))


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)


async def _serve(server: EmulatorServer, *, quiet: bool, exit_with_parent: bool = False) -> int:
    try:
        await server.start()
    except OSError as exc:
        return _fail(f"cannot listen: {exc}", code=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if exit_with_parent:
        _watch_stdin(loop, stop)
    print(f"{c.URL_PREFIX}{server.url}", flush=True)
    if not quiet:
        print(
            f"ImageSearch emulator on {server.url} (region {c.DEFAULT_REGION}, project {c.DEFAULT_PROJECT_ID}); "
            "control endpoints under /_emulator/. Stop with Ctrl-C.",
            file=sys.stderr,
            flush=True,
        )
    await stop.wait()
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
