"""One front end at a time per checkout: Snakemake's jobs, DVC's stages and hand-run `g2d` commands.

Snakemake locks its working directory against a second Snakemake, DVC its repository against a
second DVC, but neither knows the other: `dvc repro` and `snakemake` in one checkout would write the
same files with different settings. Every stage command registers in `.g2d/lock.json` under its front
end (Snakemake's shell prefix sets G2D_FRONTEND=snakemake; DVC sets DVC_STAGE for its commands;
anything else is the command line). Any number of stages of one front end may run together (Snakemake
runs jobs in parallel); a stage of another front end is refused while one is registered. A killed
stage's entry is dropped once its process is gone (checked on the same host; an entry of another host
is trusted until it ends, or until the file is deleted by hand).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from g2d.errors import G2DError
from g2d.io.atomic import process_running, write_json

LOCK_DIR = ".g2d"
FRONTEND_ENV = "G2D_FRONTEND"


class LockedError(G2DError):
    """Another front end is running stages in this checkout."""


def frontend(env: Mapping[str, str] = os.environ) -> str:
    """Which front end runs this command: snakemake, dvc, or cli (by hand)."""
    if env.get(FRONTEND_ENV):
        return env[FRONTEND_ENV]
    if env.get("DVC_STAGE"):
        return "dvc"
    return "cli"


def _alive(host: str, pid: int) -> bool:
    """Whether a holder's process runs; one on another host cannot be checked, so it is trusted."""
    return host != socket.gethostname() or process_running(pid)


@contextlib.contextmanager
def _guard(folder: Path) -> Iterator[Path]:
    """Hold the registry's flock while reading or changing it (a few milliseconds)."""
    folder.mkdir(exist_ok=True)
    with open(folder / "lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield folder / "lock.json"
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"holders": []}
    return data if isinstance(data, dict) and isinstance(data.get("holders"), list) else {"holders": []}


def _write(path: Path, data: dict[str, Any]) -> None:
    if not data["holders"]:
        path.unlink(missing_ok=True)
        return
    write_json(path, data)


@contextlib.contextmanager
def project_lock(root: Path, stage: str, env: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Register this stage for its front end while the block runs; refuse if another front end holds the checkout."""
    folder = root / LOCK_DIR
    me = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "stage": stage,
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "token": uuid.uuid4().hex,
    }
    mine = frontend(env)
    with _guard(folder) as path:
        data = _read(path)
        data["holders"] = [h for h in data["holders"] if _alive(str(h.get("host")), int(h.get("pid", 0)))]
        if data["holders"] and data.get("frontend") != mine:
            other = data["holders"][0]
            raise LockedError(
                f"{path}: {data.get('frontend')} is running stages in this checkout ({other['stage']}, pid "
                f"{other['pid']} on {other['host']}, since {other['since']}); running {mine} here at the same "
                "time would mix outputs made with different settings. Wait for it to finish or stop it; if no "
                f"such run is alive, delete {path}"
            )
        data["frontend"] = mine
        data["holders"].append(me)
        _write(path, data)
    try:
        yield
    finally:
        with _guard(folder) as path:
            data = _read(path)
            data["holders"] = [h for h in data["holders"] if h.get("token") != me["token"]]
            _write(path, data)
