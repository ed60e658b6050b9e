"""deploy/systemd: `systemd-analyze verify` and an offline security review of each unit.

`verify` checks that ExecStart's program exists, so the install path is pointed at
this virtualenv's `transcriber`; nothing else changes. It exits 0 on unknown keys
and bad values, which it only reports on stderr: any stderr fails the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, tool
from tests.servers.nginx import replace

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
DATA_DIRS = "/var/lib/video-transcriber /var/log/video-transcriber"


def relocated(unit: Path, folder: Path) -> Path:
    text = replace(
        unit.read_text(),
        re.escape("/opt/video-transcriber/venv/bin/"),
        f"{Path(sys.executable).parent}/",
        1,
    )
    out = folder / unit.name
    out.write_text(text)
    return out


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tool("systemd-analyze", "apt install systemd")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_there_is_a_unit_for_the_service_and_the_worker() -> None:
    commands = [re.search(r"ExecStart=\S+ (\w+)", u.read_text()) for u in UNITS]
    assert sorted(c.group(1) for c in commands if c) == ["serve", "worker"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies_cleanly(unit: Path, tmp_path: Path) -> None:
    done = analyze("verify", "--man=no", str(relocated(unit, tmp_path)))
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_is_hardened(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    for line in ("Restart=on-failure", "User=transcriber", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", f"ReadWritePaths={DATA_DIRS}"):  # fmt: skip
        assert f"\n{line}\n" in text, line
    # systemd's own exposure score, 0 (locked down) to 10; --threshold is in tenths.
    done = analyze("security", "--offline=true", "--threshold=20", str(relocated(unit, tmp_path)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d) OK", done.stdout)
    assert score is not None and float(score.group(1)) < 2.0, done.stdout[-300:]
