"""Benchmarks of drmaa2 serve and the remote tracker, against the local call in the same run.

(a) ``run_job`` + ``wait_terminated`` of ``/bin/true``, one after another: through a server on a
    Unix socket (contact ``drmaa2+unix://...?contact=process``) against the same calls on the
    process tracker of this program's own store, in interleaved rounds; median per job (target:
    remote at most 2x the local call)
(b) N remote waiters held by one server at once (N jobs sleeping, N concurrent ``POST /v1/wait``
    long polls from one asyncio client): the server's peak RSS (VmHWM) and how long after the
    jobs' end the last wait answered (target: N = 1000 under 200 MB)
Run: .venv/bin/python bench/bench_serve.py [JOBS] [WAITERS]   (defaults 200 and 1000)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import httpx  # noqa: E402
from _common import median_of, report  # noqa: E402

import pydrmaa2 as d2  # noqa: E402

ROUNDS = 5
TRUE = d2.JobTemplate(remote_command="/bin/true")


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], Path, str]:
    """A ``drmaa2 serve`` on a Unix socket with a store of its own; (process, socket, token)."""
    home, sock = directory / "server-home", directory / "serve.sock"
    home.mkdir(mode=0o700)
    with open(directory / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pydrmaa2.cli", "serve", "--socket", str(sock)],
            env=dict(os.environ, PYDRMAA2_HOME=str(home)), stdout=subprocess.DEVNULL, stderr=log)
    token_file = home / "serve.token"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sock.exists() and token_file.exists():
            token = token_file.read_text().strip()
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)),
                                  base_url="http://serve") as c:
                    if c.get("/v1/info", headers={"Authorization": f"Bearer {token}"}).is_success:
                        return proc, sock, token
            except httpx.TransportError:
                pass
        time.sleep(0.1)  # no event says that a server listens
    proc.kill()
    raise SystemExit("drmaa2 serve did not start")


def vm_hwm(pid: int) -> int:
    """Peak resident set of process ``pid``, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise KeyError("VmHWM")


def run_and_wait(js: d2.JobSession, n: int) -> float:
    """Seconds per job of n run_job + wait_terminated, one after another."""
    t0 = time.perf_counter()
    for _ in range(n):
        info = js.run_job(TRUE).wait_terminated(60)
        assert info.state is d2.JobState.DONE, info
    return (time.perf_counter() - t0) / n


async def waiters(sock: Path, token: str, n: int) -> tuple[float, float]:
    """(seconds to submit, seconds from the jobs' end to the last wait's answer) for n
    concurrent remote waits on n sleeping jobs."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock), limits=limits),
                                 base_url="http://serve", timeout=120,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        r = await c.post("/v1/sessions", json={"name": "waiters", "contact": "process"})
        r.raise_for_status()
        seconds = float(os.environ.get("BENCH_SLEEP", 15 + n / 100))
        t0 = time.perf_counter()
        r = await c.post("/v1/sessions/waiters/arrays", json={
            "template": {"remote_command": "/bin/sleep", "args": [f"{seconds:.0f}"]},
            "begin": 1, "end": n, "step": 1})
        r.raise_for_status()
        ids = r.json()["job_ids"]
        submitted = time.perf_counter() - t0

        async def wait(job_id: str) -> None:
            # Each waiter its own connection, spoken to by hand: httpx's pool of 1,000
            # connections costs its client more CPU than the server spends on them all.
            reader, writer = await asyncio.open_unix_connection(str(sock))
            body = json.dumps({"ids": [job_id], "mode": "all_terminated", "timeout": 600}).encode()
            request = (f"POST /v1/wait HTTP/1.1\r\nHost: serve\r\nAuthorization: Bearer {token}"
                       f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                       f"\r\n\r\n").encode() + body
            try:
                while True:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head.split(b" ", 2)[1])
                    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length:")))
                    answer = json.loads(await reader.readexactly(length))
                    assert status == 200, answer
                    if answer["done"]:
                        return
            finally:
                writer.close()

        await asyncio.gather(*(wait(j) for j in ids))
        returned = time.time()
        ends = []
        for j in ids:
            info = (await c.get(f"/v1/jobs/{j}/info")).json()
            assert info["state"] == "done", info
            ends.append(info["finish_time"])
        last_end = max(dt.datetime.fromisoformat(e).timestamp() for e in ends)
        return submitted, returned - last_end


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        proc, sock, token = start_server(directory)
        try:
            os.environ["PYDRMAA2_TOKEN"] = token
            sm = d2.SessionManager(directory / "client-home")
            local = sm.create_job_session("local", contact="process")
            remote = sm.create_job_session("remote", contact=f"drmaa2+unix://{sock}?contact=process")
            run_and_wait(local, 20), run_and_wait(remote, 20)  # warm both paths up
            ours, base = [], []
            for _ in range(ROUNDS):
                base.append(run_and_wait(local, jobs))
                ours.append(run_and_wait(remote, jobs))
            r, b = median_of(ours), median_of(base)
            rows = [(f"(a) run_job + wait of /bin/true ({jobs}x{ROUNDS})", f"{r * 1e3:.2f} ms",
                     f"{b * 1e3:.2f} ms", f"{r / b:.2f}x (<= 2x)")]
            rss0 = vm_hwm(proc.pid)
            submitted, lag = asyncio.run(waiters(sock, token, n))
            hwm = vm_hwm(proc.pid)
            rows.append((f"(b) {n} remote waiters: server VmHWM", f"{hwm / 1024:.0f} MB",
                         f"{rss0 / 1024:.0f} MB idle", "(< 200 MB)"))
            rows.append((f"(b) {n} remote waiters: submit / last answer", f"{submitted:.2f} s",
                         f"{lag:.2f} s after", ""))
            report(f"drmaa2 serve (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})", rows)
            sm.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
