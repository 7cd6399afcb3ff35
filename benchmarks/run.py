"""Benchmark DSAgent's own overhead next to the floor it runs on (issue 6): ``python benchmarks/run.py``.

Starts the scripted model and ``dsagent serve`` on free 127.0.0.1 ports in a temporary folder, runs
figures 1-13, prints the table and writes it as JSON under ``benchmarks/results/``. Everything it
starts is ended by PID, whatever happens. ``--quick`` runs tiny counts (the smoke test uses it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import latency  # noqa: E402
import mcp_task  # noqa: E402
import restart  # noqa: E402
import scale  # noqa: E402
import streams  # noqa: E402
from api import Api  # noqa: E402
from context import Bench, Config  # noqa: E402
from procs import dsagent_server, model_server  # noqa: E402
from report import Row, table, write_json  # noqa: E402

QUICK = Config(samples=3, creates=1, concurrent=2, loads=(2,), history=(4, 8), starts=1, big_mb=2, stream_loads=(1,),
               stream_tokens=40, cpu_streams=(1,), idle_seconds=1)
PHASES = {
    "latency": latency.run, "scale": scale.run, "streams": streams.run, "restart": restart.run, "mcp": mcp_task.run,
}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--quick", action="store_true", help="tiny counts: checks that the benchmark works")
    cli.add_argument("--samples", type=int, help="timed repetitions per latency figure (default 30)")
    cli.add_argument("--loads", help="concurrent streaming sessions, comma-separated (default 10,25,50)")
    cli.add_argument("--streams", help="sessions streaming realistic replies, comma-separated (default 1,5,20,50)")
    cli.add_argument("--tokens", type=int, help="one-token chunks per realistic reply (default 400)")
    cli.add_argument("--model-workers", type=int, help="DSAgent.model_workers of the server (0: litellm in process)")
    cli.add_argument("--no-fast-path", action="store_true",
                     help="DSAgent.model_fast_path=False: every model call through litellm's own stream")
    cli.add_argument("--only", choices=sorted(PHASES), action="append", help="run only these phases")
    cli.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/<time>.json)")
    return cli.parse_args(argv)


def config(args: argparse.Namespace) -> Config:
    base = QUICK if args.quick else Config()
    if args.samples:
        base.samples = args.samples
    if args.loads:
        base.loads = tuple(int(n) for n in args.loads.split(","))
    if args.streams:
        base.stream_loads = tuple(int(n) for n in args.streams.split(","))
    if args.tokens:
        base.stream_tokens = args.tokens
    if args.model_workers is not None:
        base.server_args += (f"--DSAgent.model_workers={args.model_workers}",)
    if args.no_fast_path:
        base.fast_path = False
        base.server_args += ("--DSAgent.model_fast_path=False",)
    return base


async def bench(cfg: Config, workdir: Path, phases: list[str]) -> Bench:
    root = workdir / "root"
    root.mkdir()
    model = model_server(workdir)
    try:
        server = dsagent_server(root, model.url, workdir, *cfg.server_args)
        b = Bench(cfg, workdir, root, model, server, Api(server.url))
        await asyncio.sleep(0.5)
        b.rows.append(Row("9", "server RSS, idle right after start", server.rss_mb(), unit="MB"))
        try:
            for name in phases:
                await PHASES[name](b)
        finally:
            await b.api.close()
            b.server.stop()
    finally:
        model.stop()
    return b


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    cfg = config(args)
    phases = args.only or list(PHASES)
    out = args.out or Path(__file__).resolve().parent / "results" / f"{datetime.now():%Y%m%d-%H%M%S}.json"
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dsagent-bench-") as tmp:
        b = asyncio.run(bench(cfg, Path(tmp), phases))
    seconds = time.perf_counter() - began
    rows = sorted(b.rows, key=lambda r: int(r.figure))
    print(table(rows))
    write_json(out, rows, {**vars(cfg), "phases": phases}, seconds)
    misses = sum(r.ok is False for r in rows)
    print(f"\n{len(rows)} lines, {misses} missed their target, {seconds:.0f} s; JSON: {out}")


if __name__ == "__main__":
    main()
