"""docker-compose.yml is valid (docker-compose says so) and describes the production topology."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import yaml

from tests.support.processes import ROOT

REQUIRED = {
    "POSTGRES_PASSWORD": "pw",
    "SECRET_KEY": "sk",
    "ADMIN_TOKEN": "tok",
    "FLOWER_BASIC_AUTH": "ops:pw",
}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # CI installs docker-compose (scripts/ensure-services.sh): a missing binary fails, never skips.
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (apt-get install -y docker-compose)"
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_describes_the_production_topology() -> None:
    result = compose_config(REQUIRED)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]

    assert set(services) == {
        "redis",
        "postgres",
        "migrate",
        "web",
        "worker-orders",
        "worker-fulfilment",
        "flower",
    }
    assert "--appendonly" in services["redis"]["command"]
    assert services["migrate"]["command"] == ["flask", "--app", "shop", "db", "upgrade"]
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker-fulfilment"]["deploy"]["replicas"] == 2
    queues = services["worker-orders"]["command"][services["worker-orders"]["command"].index("-Q") + 1]
    assert {"orders", "payments"} <= set(queues.split(","))
    commands = [service.get("command") or [] for service in services.values()]
    assert not any("beat" in command for command in commands)  # workers alone: maintenance runs inside them
    assert "--basic-auth=ops:pw" in services["flower"]["command"]
    assert "--max-tasks=10000" in services["flower"]["command"]
    for name in (
        "redis",
        "postgres",
        "web",
        "worker-orders",
        "worker-fulfilment",
        "flower",
    ):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker-orders", "worker-fulfilment", "flower"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose_config({k: v for k, v in REQUIRED.items() if k != "FLOWER_BASIC_AUTH"})
    assert result.returncode != 0 and "FLOWER_BASIC_AUTH" in result.stderr
