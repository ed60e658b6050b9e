"""deploy/compose: `docker-compose config` on both profiles, and what it resolves.

`docker-compose config` validates the file against the Compose schema and
resolves anchors, variables and paths; any output on stderr (a warning such as an
unset variable) fails the test. The resolved model is then checked for what the
schema cannot see: the profiles do not mix, every file mounted exists, nginx and
Prometheus point at services of their own profile, and the .env example
documents every variable the file reads.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, tool
from tests.servers import nginx as ng

COMPOSE = DEPLOY / "compose"
PROFILES = ("onebox", "scale")


def compose_config(*args: str) -> dict[str, Any]:
    binary = tool("docker-compose", "apt install docker-compose")
    done = subprocess.run(
        [binary, "--project-directory", str(COMPOSE), "-f", str(COMPOSE / "compose.yaml"),
         "--env-file", str(COMPOSE / ".env.example"), *args, "config"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module", params=PROFILES)
def profile(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """A profile's name and the services it starts, from `docker-compose config`."""
    name: str = request.param
    config = compose_config("--profile", name)
    services = {k: v for k, v in config["services"].items() if name in v.get("profiles", [])}
    return name, services


def test_every_service_belongs_to_exactly_one_profile() -> None:
    services = compose_config()["services"]
    mixed = {s: v.get("profiles") for s, v in services.items() if len(v.get("profiles", [])) != 1}
    assert mixed == {}
    onebox = {s for s, v in services.items() if v["profiles"] == ["onebox"]}
    assert onebox == {"transcriber", "nginx"}
    scale = {s for s, v in services.items() if v["profiles"] == ["scale"]}
    assert {"api-1", "api-2", "worker-1", "worker-2", "redis", "postgres", "seaweedfs",
            "nginx-scale", "prometheus"} <= scale  # fmt: skip


def test_services_depend_only_on_their_own_profile(profile: tuple[str, dict[str, Any]]) -> None:
    _, services = profile
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume; `docker-compose config` writes the short form."""
    found = []
    for volume in service.get("volumes", []):
        source, target = (
            (volume["source"], volume["target"])
            if isinstance(volume, dict)
            else tuple(volume.split(":")[:2])
        )
        found.append((source, target))
    return found


def test_mounted_files_exist(profile: tuple[str, dict[str, Any]]) -> None:
    _, services = profile
    binds = [(n, s) for n, svc in services.items() for s, _ in mounts(svc) if s.startswith("/")]
    assert binds, "no file is mounted"
    for name, source in binds:
        assert Path(source).exists(), (name, source)


def test_one_image_for_every_transcriber_process(profile: tuple[str, dict[str, Any]]) -> None:
    _, services = profile
    ours = {n: s for n, s in services.items() if "build" in s}
    assert {s["image"] for s in ours.values()} == {"video-transcriber:latest"}
    for service in ours.values():
        assert Path(service["build"]["context"]) == DEPLOY.parent
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"


def upstream_hosts(services: dict[str, Any]) -> list[str]:
    nginx = next(s for s in services.values() if s["image"].startswith("nginx"))
    source = next(s for s, t in mounts(nginx) if t.endswith("transcriber-upstream.conf"))
    return re.findall(r"server ([\w-]+):8086", Path(source).read_text())


def test_nginx_balances_the_api_nodes_of_its_profile(profile: tuple[str, dict[str, Any]]) -> None:
    name, services = profile
    hosts = upstream_hosts(services)
    assert hosts == (["transcriber"] if name == "onebox" else ["api-1", "api-2"])
    for host in hosts:
        assert services[host].get("command", ["transcriber", "serve"])[:2] == [
            "transcriber",
            "serve",
        ]


@pytest.mark.parametrize("name", PROFILES)
def test_nginx_files_of_each_profile_pass_nginx_t(name: str, tmp_path: Path) -> None:
    """The files the nginx container mounts, with the service names as local addresses."""
    upstream = (COMPOSE / "nginx" / f"upstream-{name}.conf").read_text()
    ports = [8086 + i for i in range(len(re.findall(r"server ", upstream)))]
    conf = ng.lay_out(tmp_path, "transcriber.conf", ports, ng.plain_site(8080))
    (tmp_path / ng.UPSTREAM).write_text(
        ng.replace(upstream, r"server [\w-]+:8086", "server 127.0.0.1:8086")
    )
    done = ng.check(conf)
    assert done.returncode == 0 and "[warn]" not in done.stderr, done.stderr


def test_prometheus_scrapes_the_api_nodes_and_the_workers(tmp_path: Path) -> None:
    promtool = tool("promtool", "apt install prometheus")
    done = subprocess.run(
        [promtool, "check", "config", str(COMPOSE / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scrape for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"api-1:8086", "api-2:8086", "worker-1:9100", "worker-2:9100"}


def documented(env_example: str) -> dict[str, str]:
    """Each variable of the .env example, with the comment block above it (one block may
    document several variables in a row)."""
    found: dict[str, str] = {}
    comment: list[str] = []
    after_variable = False
    for line in env_example.splitlines():
        if line.startswith("# ---"):
            comment, after_variable = [], False
        elif line.startswith("#"):
            comment = [line] if after_variable else [*comment, line]
            after_variable = False
        elif m := re.match(r"([A-Z][A-Z0-9_]*)=", line):
            found[m.group(1)] = "\n".join(comment)
            after_variable = True
        else:
            comment, after_variable = [], False
    return found


def test_env_example_documents_every_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (COMPOSE / "compose.yaml").read_text()))
    env = documented((COMPOSE / ".env.example").read_text())
    assert used - set(env) == set(), "variables compose.yaml reads that .env.example lacks"
    assert set(env) - used == {"COMPOSE_PROFILES"}, "variables nothing reads"
    assert [name for name, comment in env.items() if not comment] == []


def test_scale_api_nodes_and_workers_share_the_servers() -> None:
    services = compose_config("--profile", "scale")["services"]
    envs = [services[n]["environment"] for n in ("api-1", "api-2", "worker-1", "worker-2")]
    for key in ("TRANSCRIBER_DATABASE_URL", "TRANSCRIBER_QUEUE_URL", "TRANSCRIBER_STORAGE_URL"):
        assert len({e[key] for e in envs}) == 1, key
    assert envs[0]["TRANSCRIBER_QUEUE_URL"] == "redis://redis:6379/0"
    assert envs[0]["TRANSCRIBER_DATABASE_URL"].startswith("postgresql+psycopg://transcriber:")
    assert services["worker-1"]["command"][:2] == ["transcriber", "worker"]
