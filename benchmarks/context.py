"""What every figure gets: the run's settings, the processes it started, and the floors measured so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from api import Api
from procs import Proc
from report import Row


@dataclass
class Config:
    samples: int = 30  # timed repetitions of each latency figure
    creates: int = 3  # single session creates (each boots a kernel)
    concurrent: int = 10  # sessions created at once
    loads: tuple[int, ...] = (10, 25, 50)  # sessions streaming a task at once
    history: tuple[int, ...] = (10, 100, 1000)  # rounds of history for /turns and /messages
    starts: int = 3  # server starts with and without the extension
    big_mb: float = 50  # size of the printing cell
    chunk_delay_ms: float = 20  # model delay between chunks when timing the first llm_delta
    stream_loads: tuple[int, ...] = (1, 5, 20, 50)  # sessions streaming realistic replies at once
    stream_tokens: int = 400  # one-token chunks per realistic reply
    token_rate: float = 50  # tokens/s per stream (then once as fast as possible)
    cpu_streams: tuple[int, ...] = (1, 5)  # sessions streaming while the server's CPU per chunk is measured
    idle_seconds: float = 5  # the user's requests timed on the idle server
    server_args: tuple[str, ...] = ()  # extra ``dsagent serve`` options (``--model-workers``)
    fast_path: bool = True  # DSAgent.model_fast_path of the server and of the in-process client rows


@dataclass
class Bench:
    config: Config
    workdir: Path
    root: Path
    model: Proc
    server: Proc
    api: Api
    rows: list[Row] = field(default_factory=list)
    floors: dict[str, float] = field(default_factory=dict)  # p50 in ms, by name
    sessions: list[str] = field(default_factory=list)  # idle sessions with a running kernel

    @property
    def runtime(self) -> Path:
        return self.workdir / "runtime"
