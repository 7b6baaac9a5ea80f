"""Profile commq's hot paths with py-spy (install it into the venv by hand; it is no dependency).

    python -m bench.profile dispatch postgresql [--jobs 20000] [--seconds 30]
    python -m bench.profile enqueue sqlite [--jobs 3000]
    python -m bench.profile enqueue-batch postgresql [--jobs 20000]
    python -m bench.profile http postgresql [--seconds 20]     # the server under 16 clients
    python -m bench.profile http-batch sqlite [--seconds 20]   # ... POSTing /jobs/batch

Runs the scenario's process under ``py-spy record`` (collapsed stacks, idle frames
excluded, subprocesses included) on a throwaway database, then prints the functions with
the most samples, inclusive and self, commq's frames and the libraries' alike.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import commq_scenarios as cq
from bench import http_load
from bench.databases import database

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(collapsed: Path, top: int) -> str:
    """Top functions by inclusive and by self samples from a py-spy collapsed file."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        out.append(f"\n-- top {top} {title} --")
        out += [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(out)


def _spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def _record(command: list[str], out: Path) -> None:
    subprocess.run(
        [
            _spy(),
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--subprocesses",
            "--output",
            str(out),
            "--",
            *command,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=900,
    )


def _record_server(url: str, seconds: float, out: Path, batch: int) -> None:
    """Profile `commq serve` while 16 clients POST /jobs (or batches to /jobs/batch)."""
    with http_load.server(url) as (port, key):
        spy = subprocess.Popen(
            [
                _spy(),
                "record",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(seconds)),
                "--pid",
                str(http_load.last_server_pid),
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        asyncio.run(_load_for(port, key, seconds, batch))
        spy.wait(60)


async def _load_for(port: int, key: str, seconds: float, batch: int) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await http_load.http_enqueue(port, key, 200 if batch == 1 else 16, batch)


def main(argv: list[str] | None = None) -> int:
    """Profile one scenario and print the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument(
        "scenario", choices=("dispatch", "enqueue", "enqueue-batch", "http", "http-batch")
    )
    parser.add_argument("backend", choices=("sqlite", "postgresql"))
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="also save the collapsed stacks here")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    with database(args.backend, "profile") as url:
        cq.prepare(url)
        if args.scenario.startswith("http"):
            _record_server(url, args.seconds, out, 1000 if args.scenario == "http-batch" else 1)
        elif args.scenario == "dispatch":
            asyncio.run(cq.fill_backlog(url, args.jobs))
            command = [sys.executable, "-m", "bench.worker_proc", "drain", url, str(args.seconds)]
        else:
            call = (
                f"enqueue_single({url!r}, {args.jobs})"
                if args.scenario == "enqueue"
                else f"enqueue_batch({url!r}, {args.jobs // 1000})"
            )
            command = [
                sys.executable,
                "-c",
                f"import asyncio; from bench.commq_scenarios import *; print(asyncio.run({call}))",
            ]
        if not args.scenario.startswith("http"):
            _record(command, out)
    if args.keep:
        shutil.copyfile(out, args.keep)
    print(summarise(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
