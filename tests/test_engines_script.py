"""scripts/engines.sh without touching the engines: its helpers are sourced into a bash of their
own and tried on temporary files (backups are never overwritten, a failed set-up puts back the
files and directories it replaced and restarts the daemon it stopped, with its old command line)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "engines.sh"


def bash(code: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run CODE in a bash that has sourced the script (functions only, main not run)."""
    prog = f"source {SCRIPT}\n{textwrap.dedent(code)}"
    done = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def test_syntax_and_shellcheck():
    """This script and the others a user runs (demo, docs, tests, CI) parse, and shellcheck finds
    nothing in them (scripts/engines.sh installs it)."""
    scripts = [*sorted(SCRIPT.parent.glob("*.sh")), SCRIPT.parent.parent / ".ci" / "run"]
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    done = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout


def test_help_and_unknown_engine():
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: scripts/engines.sh" in done.stdout
    assert "pydrmaa2-backup" in done.stdout
    done = subprocess.run(["bash", str(SCRIPT), "nosuchengine"], capture_output=True, text=True)
    assert done.returncode == 1 and "unknown engine 'nosuchengine'" in done.stderr


def test_install_file_keeps_every_replaced_version(tmp_path):
    conf = tmp_path / "etc" / "x.conf"
    conf.parent.mkdir()
    conf.write_text("theirs\n")
    out = bash(f"""
        install_file {conf} 0600 ours && echo changed
        install_file {conf} 0600 ours || echo unchanged
        install_file {conf} 0600 newer && echo changed
    """).stdout.split()
    assert out == ["changed", "unchanged", "changed"]
    assert conf.read_text() == "newer\n" and oct(conf.stat().st_mode & 0o777) == "0o600"
    backups = sorted(conf.parent.glob("x.conf.pydrmaa2-backup-*"))
    # two copies (even within the same second), none overwritten, nothing else left behind
    assert sorted(b.read_text() for b in backups) == ["ours\n", "theirs\n"]
    assert sorted(p.name for p in conf.parent.iterdir()) == sorted(["x.conf", *(b.name for b in backups)])


def test_a_failed_set_up_puts_files_and_directories_back(tmp_path):
    old = tmp_path / "old.conf"
    old.write_text("theirs\n")
    new = tmp_path / "new.conf"
    state = tmp_path / "state"
    state.mkdir()
    (state / "clustername").write_text("other")
    done = bash(f"""
        tx_begin demo
        install_file {old} 0644 ours
        install_file {new} 0644 ours
        move_aside {state} "demo: foreign state"
        mkdir {state} && echo ours >{state}/clustername
        die "demo: failing on purpose"
    """, check=False)
    assert done.returncode == 1
    assert "demo: failing on purpose" in done.stderr
    assert "demo: set-up failed (see above); the previous configuration and daemons are back" in done.stderr
    assert old.read_text() == "theirs\n" and not new.exists()
    assert (state / "clustername").read_text() == "other"
    (kept,) = tmp_path.glob("old.conf.pydrmaa2-backup-*")  # the copy stays
    assert kept.read_text() == "theirs\n"
    (failed,) = tmp_path.glob("state.pydrmaa2-failed-*")
    assert (failed / "clustername").read_text() == "ours\n"


def test_a_successful_set_up_keeps_its_changes(tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text("theirs\n")
    bash(f"""
        tx_begin demo
        install_file {conf} 0644 ours
        tx_end
        false || true
    """)
    assert conf.read_text() == "ours\n"


def test_config_values_are_read_from_files_and_scontrol_output(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("# c\nclustername=other  # comment\nSlurmctldPort = 7817\n")
    out = bash(f"""
        conf_value {conf} ClusterName x
        conf_value {conf} SlurmctldPort 6817
        conf_value {conf} SlurmdPort 6818
        conf_value {tmp_path}/none PidFile /run/x.pid
        SLURM_CFG=$'ClusterName             = pydrmaa2\\nSchedulerParameters     = a=1,b=2'
        SLURM_CFG+=$'\\nSlurmctldPort           = 6817'
        cfg_get ClusterName; cfg_get SchedulerParameters; cfg_get SlurmctldPort
    """).stdout.split()
    assert out == ["other", "7817", "6818", "/run/x.pid", "pydrmaa2", "a=1,b=2", "6817"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (/run/pydrmaa2, /var/log)")
def test_a_daemon_stopped_for_a_failed_reconfiguration_is_started_again(tmp_path):
    """stop_for_reconfig keeps argv, environment and working directory; the rollback reuses them."""
    name = f"selftest-{os.getpid()}"
    marker = tmp_path / "marker"
    code = ("import os, time; open('marker', 'a').write(f\"{os.getpid()} {os.environ['PD2_SELFTEST']} "
            "{os.getcwd()}\\n\"); time.sleep(300)")
    # setsid -f: not our child, like a daemon (no zombie for the script to wait on)
    subprocess.run(["setsid", "-f", "/usr/bin/python3", "-c", code], cwd=tmp_path, check=True,
                   env={"PATH": "/usr/bin:/bin", "PD2_SELFTEST": "env-kept"})
    pidfile, logfile = Path(f"/run/pydrmaa2/{name}.pid"), Path(f"/var/log/pydrmaa2-{name}.log")
    pids: list[int] = []

    def lines() -> list[list[str]]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = [line.split() for line in marker.read_text().splitlines()] if marker.exists() else []
            if len(got) > len(pids):
                pids.append(int(got[-1][0]))
                return got
            time.sleep(0.05)
        raise AssertionError("the daemon did not start")

    try:
        first = lines()
        done = bash(f"""
            tx_begin demo
            stop_for_reconfig {name} {pids[0]}
            kill -0 {pids[0]} 2>/dev/null && echo still-running
            die "demo: failing on purpose"
        """, check=False)
        assert done.returncode == 1 and "still-running" not in done.stdout
        assert f"stopping {name} (pid {pids[0]})" in done.stderr
        assert f"starting {name}: /usr/bin/python3 -c {code} (again: previous command line" in done.stderr
        assert "env-kept" not in done.stderr  # the environment is not logged
        second = lines()
        assert [line[1:] for line in second] == [["env-kept", str(tmp_path)]] * 2 and first == second[:1]
        assert int(pidfile.read_text().split()[0]) == pids[1]
        assert Path(f"/proc/{pids[1]}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-c", code.encode()]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        for f in (pidfile, Path(f"{pidfile}.start"), logfile):
            f.unlink(missing_ok=True)
