"""A real two-process Ray cluster on 127.0.0.1 for the sweep tests, torn down whatever happens.

``ray start --head --block`` and a second ``ray start --address=... --block`` run as
children of the test, each in a session of its own, on free ports (so that tests of other
checkouts on the same machine, and the in-process Ray of other test modules, never share
one). With ``--block`` each ``ray start`` stays in the foreground and owns the Ray
processes it started; teardown signals each one's process group (SIGTERM, then SIGKILL),
which stops them all. ``ray stop`` is never used: it stops every Ray on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_ports() -> list[str]:
    names = ("--node-manager-port", "--object-manager-port", "--metrics-export-port",
             "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
             "--runtime-env-agent-port")  # fmt: skip
    ports = free_ports(len(names) + 1)
    # a block of worker ports of its own, below the ephemeral range the other ports come from
    low = 10000 + (ports[-1] % 200) * 100
    return [
        *(f"{n}={p}" for n, p in zip(names, ports)),
        f"--min-worker-port={low}",
        f"--max-worker-port={low + 99}",
    ]


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)  # the group of the `ray start` we started
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # its daemons (raylet, gcs_server, workers) stay in its group: make sure
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_for(port: int | None, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until the node says it started (and, for the head, its client server listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        if "Ray runtime started" in log.read_text():
            if port is None:
                return
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.5)
    raise TimeoutError(f"Ray did not start within {timeout} s:\n{log.read_text()[-3000:]}")


def _start(command: Callable[[], tuple[list[str], int | None]], env: dict, log: Path,
           stack: ExitStack) -> None:  # fmt: skip
    """Start one `ray start --block`, torn down by ``stack``; retried twice, because on a busy
    machine a node can fail to start: Ray's raylet gives its dashboard agent a fixed 15 s to
    come up, and aborts when that Python process is slower to import. ``command()`` gives
    the command and the port to wait for, with ports picked afresh for each attempt: a port
    another process took meanwhile (the head's own processes bind ports of their own) fails
    a node for good, and a retry on the same ports fails the same way (the CI failure of
    2026-12-07: the worker's raylet found its gRPC port taken, three times)."""
    for attempt in range(3):
        cmd, port = command()
        with open(log, "a") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=ROOT,
            )  # fmt: skip
        try:
            _wait_for(port, proc, log)
        except (RuntimeError, TimeoutError):
            _stop(proc)
            if attempt == 2:
                raise
            continue
        except BaseException:  # Ctrl-C, a test timeout: the node goes too
            _stop(proc)
            raise
        stack.callback(_stop, proc)
        return


@contextmanager
def local_cluster(tmp: Path) -> Iterator[str]:
    """A head and a worker node, 1 CPU each; yields the Ray Client address ``ray://...``."""
    # no token: ~/.ray/auth_token is shared by every Ray user of this home, and a token
    # written there between the two `ray start`s would split the cluster
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0",
               RAY_AUTH_MODE="disabled")  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    # the modules a node's agents import, read once, so that they start from a warm cache
    subprocess.run([sys.executable, "-c", WARM], env=env, check=True, timeout=300)
    common = ["--block", "--num-cpus=1", "--object-store-memory=100000000",
              "--node-ip-address=127.0.0.1", "--disable-usage-stats"]  # fmt: skip
    ports: dict[str, int] = {}

    def head() -> tuple[list[str], int]:
        ports["gcs"], ports["client"] = free_ports(2)
        return [RAY, "start", "--head", f"--port={ports['gcs']}",
                f"--ray-client-server-port={ports['client']}", "--include-dashboard=false",
                *common, *_node_ports()], ports["client"]  # fmt: skip

    def worker() -> tuple[list[str], None]:  # its ports picked once the head holds its own
        return [RAY, "start", f"--address=127.0.0.1:{ports['gcs']}", *common,
                *_node_ports()], None  # fmt: skip

    with ExitStack() as stack:
        _start(head, env, tmp / "ray-head.log", stack)
        _start(worker, env, tmp / "ray-worker.log", stack)
        yield f"ray://127.0.0.1:{ports['client']}"


WARM = (
    "import ray.dashboard.agent, ray.dashboard.modules.reporter.reporter_agent, "
    "ray.dashboard.modules.job.job_agent, ray.dashboard.modules.event.event_agent, "
    "ray.dashboard.modules.log.log_agent, ray._private.runtime_env.agent.main"
)
