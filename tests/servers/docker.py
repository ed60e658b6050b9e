"""A private Docker daemon (Debian's docker.io) and a Debian base image built on this machine.

There is no image registry here, so the base image of deploy/docker/Dockerfile is
made with `debootstrap --variant=minbase bookworm` from the same Debian mirror apt
uses, carries this machine's CA certificates and the parts of its apt and pip
settings that reach the package registries, and is imported as
`debian:bookworm-slim`. The daemon has its own data and exec roots and socket, no
bridge and no iptables rules; builds and containers use the host's network, so the
machine's network is left as it was. It is stopped by its PID at the end.

`TRANSCRIBER_TEST_DOCKER_DIR` keeps the daemon's data root (and so the base and
built images) in that folder between runs; by default everything is made anew in
a temporary folder, as in CI.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.postgres import missing

BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
# pip settings that say where packages come from and how to reach it; paths on this
# machine (find-links, local indexes, constraints) mean nothing inside an image.
APT_ACQUIRE = re.compile(r"Acquire::(\w+::Proxy|Check-Valid-Until|Check-Date|Retries)\b.*;$")
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "retries", "proxy")


@dataclass
class Docker:
    client: str
    host: str
    root: Path

    def env(self) -> dict[str, str]:
        # The legacy builder of docker.io 20.10; a newer client would ask for buildx.
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.client, *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {done.stdout[-3000:]}{done.stderr}")
        return done

    def has_image(self, name: str) -> bool:
        return self.run("image", "inspect", name, check=False).returncode == 0

    def build(self, tag: str, dockerfile: Path, context: Path, *args: str) -> None:
        """`docker build` on the host's network, passing the host's proxy settings."""
        proxies = [
            a
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy")
            if (value := os.environ.get(name))
            for a in ("--build-arg", f"{name}={value}")
        ]
        log = self.root / f"build-{tag.replace(':', '-').replace('/', '-')}.log"
        with log.open("w") as out:
            done = subprocess.run(
                [self.client, "build", "--network", "host", "-f", str(dockerfile), "-t", tag,
                 *proxies, *args, str(context)],
                env=self.env(), stdout=out, stderr=subprocess.STDOUT, timeout=1800,
            )  # fmt: skip
        assert done.returncode == 0, log.read_text()[-6000:]


def _binaries() -> tuple[str, str]:
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
    if dockerd is None:
        missing("dockerd is not installed: apt install docker.io")
    # The client packaged with this daemon first: another one on PATH may be newer than
    # the daemon's API or want the buildx plugin.
    beside = Path(dockerd).resolve().parents[1] / "bin" / "docker"
    client = str(beside) if beside.exists() else shutil.which("docker")
    if client is None:
        missing("the docker client is not installed: apt install docker.io")
    if os.geteuid() != 0:
        missing("dockerd needs root to run")
    return dockerd, client


def _wait_ready(docker: Docker, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while docker.run("version", check=False, timeout=20).returncode != 0:
        if proc.poll() is not None:
            raise AssertionError(f"dockerd exited: {log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"dockerd did not answer: {log.read_text()[-3000:]}"
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon by its PID (it stops its containers and containerd), then wait."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """A Docker daemon of its own for the session, with `debian:bookworm-slim` loaded."""
    dockerd, client = _binaries()
    kept = os.environ.get("TRANSCRIBER_TEST_DOCKER_DIR")
    root = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="transcriber-docker-"))
    root.mkdir(parents=True, exist_ok=True)
    # Unix socket paths are short (108 bytes): the exec root and socket live in /tmp.
    run_dir = Path(tempfile.mkdtemp(prefix="tdock-"))
    sock = run_dir / "docker.sock"
    log = root / "dockerd.log"
    proc = subprocess.Popen(
        [dockerd, "--data-root", str(root / "data"), "--exec-root", str(run_dir / "exec"),
         "--pidfile", str(run_dir / "docker.pid"), "-H", f"unix://{sock}",
         "--bridge=none", "--iptables=false", "--log-level=warn"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    daemon = Docker(client, f"unix://{sock}", root)
    try:
        _wait_ready(daemon, proc, log)
        if not daemon.has_image(BASE_IMAGE):
            _import_base(daemon, root)
        yield daemon
    finally:
        _stop(proc)
        _unmount_below(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        if not kept:
            _unmount_below(root)
            shutil.rmtree(root, ignore_errors=True)


def _unmount_below(folder: Path) -> None:
    """Mounts the daemon left under its folders (its network namespace's nsfs)."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", point], capture_output=True, timeout=30)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if "bookworm" in suites and "main" in fields.get("Components", "").split():
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if path.is_file():
            for line in path.read_text().splitlines():
                parts = line.split()
                if parts[:1] == ["deb"] and "bookworm" in parts and "main" in parts:
                    return next(p for p in parts[1:] if "://" in p)
    return DEFAULT_MIRROR


def pip_config() -> str:
    """The host's pip settings that name a package index, as an /etc/pip.conf for the image."""
    found: dict[str, str] = {}
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    for line in listed.stdout.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.partition(".")
        if section in ("global", "install") and name in PIP_KEYS:
            found[name] = value.strip().strip("'\"")
    for name in PIP_KEYS:
        if value := os.environ.get("PIP_" + name.upper().replace("-", "_")):
            found[name] = value
    kept = {}
    for name, value in found.items():
        remote = [v for v in value.split() if not v.startswith(("file:", "/"))]
        if remote:
            kept[name] = " ".join(remote)
    config = configparser.ConfigParser()
    # The image's own bundle: apt's ca-certificates rebuilds it with this machine's CAs.
    config["global"] = {**kept, "cert": str(CA_BUNDLE)}
    with tempfile.TemporaryFile("w+") as f:
        config.write(f)
        f.seek(0)
        return f.read()


def apt_acquire_settings() -> str:
    """This machine's one-line apt `Acquire::` settings for proxies and mirror validity."""
    folder = Path("/etc/apt/apt.conf.d")
    lines = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file():
            text = path.read_text(errors="replace")
            lines += [x.strip() for x in text.splitlines() if APT_ACQUIRE.match(x.strip())]
    return "\n".join(lines) + "\n"


def _import_base(docker: Docker, root: Path) -> None:
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        missing("debootstrap is not installed: apt install debootstrap")
    rootfs = root / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    log = root / "debootstrap.log"
    with log.open("w") as out:
        done = subprocess.run(
            [debootstrap, "--variant=minbase", "bookworm", str(rootfs), debian_mirror()],
            stdout=out, stderr=subprocess.STDOUT, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text()[-3000:]
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / cache).glob("*"):
            if item.is_file():
                item.unlink()
    if CA_BUNDLE.is_file():
        (rootfs / CA_BUNDLE.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CA_BUNDLE, rootfs / CA_BUNDLE.relative_to("/"))
    if LOCAL_CAS.is_dir():
        shutil.copytree(LOCAL_CAS, rootfs / LOCAL_CAS.relative_to("/"), dirs_exist_ok=True)
    (rootfs / "etc/pip.conf").write_text(pip_config())
    (rootfs / "etc/apt/apt.conf.d/90host-acquire").write_text(apt_acquire_settings())
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [docker.client, "import", "-", BASE_IMAGE],
        stdin=tar.stdout, env=docker.env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert tar.stdout is not None
    tar.stdout.close()
    assert tar.wait() == 0 and imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs, ignore_errors=True)
