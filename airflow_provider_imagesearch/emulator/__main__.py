"""``python -m airflow_provider_imagesearch.emulator`` / ``imagesearch-emulator``: run the emulator.

Prints exactly one line to stdout once it accepts connections, ``IMAGESEARCH_EMULATOR_URL=http://...``,
so a parent process can wait for it; everything else (banner, errors) goes to stderr. Stops on
SIGTERM/SIGINT (and, with ``--exit-with-parent``, when stdin closes), saving ``--state`` first. Exit codes:
0 clean stop, 1 could not listen, 2 bad options.

``--print-connection`` prints ready ``AIRFLOW_CONN_IMAGESEARCH_DEFAULT`` values for the emulator at
``--host``/``--port`` (one per auth type) and exits without serving. ``--seed seed.json`` reads that file,
or, when there is no such file, the sample seed shipped with the package (:data:`SAMPLE_SEED`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from airflow_provider_imagesearch.emulator import constants as c
from airflow_provider_imagesearch.emulator.connection import export_lines
from airflow_provider_imagesearch.emulator.faults import FaultConfig, FaultConfigError
from airflow_provider_imagesearch.emulator.server import (
    EmulatorServer,
    NotLoopbackError,
    loopback_host,
    url_for,
)
from airflow_provider_imagesearch.emulator.state import SeedError, load_json_file

PACKAGE_DIR = Path(__file__).resolve().parent
#: The sample seed shipped with the package: two v1 instances (one NORMAL with images, one CREATION)
#: and a v2 service with items. ``--seed seed.json`` falls back to it when there is no such file.
SAMPLE_SEED = PACKAGE_DIR / "seed.json"
#: The emulator's documentation, shipped with the package.
DOCS = PACKAGE_DIR / "README.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagesearch-emulator",
        description="Local emulator of Huawei Cloud ImageSearch (v1 and the v2 MMS data API) and IAM. "
        f"It starts empty (no instance, no v2 service): seed it with --seed FILE (sample: {SAMPLE_SEED}). "
        f"Documentation: {DOCS}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument(
        "--seed",
        metavar="FILE",
        help="JSON seed: projects, users, keys, instances, images, v2 services. 'seed.json' with no such file "
        "in the current directory is the sample shipped with the package",
    )
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
        "--print-connection",
        action="store_true",
        help="print ready AIRFLOW_CONN_IMAGESEARCH_DEFAULT values (IAM password, AK/SK, token) for the "
        "emulator at --host/--port and exit",
    )
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


def seed_path(name: str) -> Path:
    """The seed file ``name``; the package's sample when ``name`` is its file name and no such file exists."""
    path = Path(name)
    if not path.exists() and name == SAMPLE_SEED.name:
        return SAMPLE_SEED
    return path


def print_connection(host: str, port: int) -> int:
    if port == 0:
        return _fail("--print-connection needs the --port the emulator listens on (0 is not a port)")
    try:
        address = loopback_host(host)
    except NotLoopbackError as exc:
        return _fail(str(exc))
    print(export_lines(url_for(address, port)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_connection:
        return print_connection(args.host, args.port)
    seed_file = seed_path(args.seed) if args.seed else None
    try:
        seed = load_json_file(str(seed_file)) if seed_file else None
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
    return asyncio.run(
        _serve(server, quiet=args.quiet, exit_with_parent=args.exit_with_parent, seed_file=seed_file)
    )


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


def banner(server: EmulatorServer, seed_file: Path | None) -> str:
    """What a newcomer needs: where it listens, what it holds, how to seed it and to connect to it."""
    state = server.app.state
    if state.instances or state.services:
        holds = (
            f"It holds {len(state.instances)} v1 instance(s) and {len(state.services)} v2 service(s)"
            + (f" from {seed_file}" if seed_file else "")
            + "."
        )
    else:
        holds = (
            "It starts EMPTY: no v1 instance, no v2 service"
            + (f" (the seed {seed_file} has none)" if seed_file else "")
            + f". Seed it with --seed FILE (a sample: --seed {SAMPLE_SEED}), or at run time with "
            "POST /_emulator/instances and POST /_emulator/v2-services."
        )
    port = server.url.rsplit(":", 1)[-1]
    return (
        f"ImageSearch emulator on {server.url} (region {c.DEFAULT_REGION}, project {c.DEFAULT_PROJECT_ID}).\n"
        f"{holds}\n"
        f"Airflow connection values: imagesearch-emulator --port {port} --print-connection\n"
        f"Control endpoints under {server.url}/_emulator/ (faults, request log, state, reset). "
        f"Documentation: {DOCS}\n"
        "Stop with Ctrl-C."
    )


async def _serve(
    server: EmulatorServer,
    *,
    quiet: bool,
    exit_with_parent: bool = False,
    seed_file: Path | None = None,
) -> int:
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
        print(banner(server, seed_file), file=sys.stderr, flush=True)
    await stop.wait()
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
