"""docker-compose.yml is valid (docker-compose says so) and describes the production topology."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support.processes import ROOT

REQUIRED = {
    "POSTGRES_PASSWORD": "postgres-secret-value",
    "SECRET_KEY": "secret-key-secret-value",
    "ADMIN_TOKEN": "admin-token-secret-value-of-32-chars",
    "FLOWER_BASIC_AUTH": "ops:flower-secret-value",
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
        "proxy",
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


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    result = compose_config({k: v for k, v in REQUIRED.items() if k != missing})
    assert result.returncode != 0 and missing in result.stderr


def test_only_the_tls_front_is_published_and_flower_sits_on_the_internal_network_alone() -> None:
    config = yaml.safe_load(compose_config(REQUIRED).stdout)
    services: dict[str, Any] = config["services"]
    assert config["networks"]["internal"].get("internal") is True  # no route out, nothing published
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert {int(port["target"]) for port in services["proxy"]["ports"]} == {80, 443}
    assert set(services["flower"]["networks"]) == {"internal"}
    assert set(services["web"]["networks"]) == {"internal"}
    for name, service in services.items():
        if name != "proxy":
            assert "public" not in service["networks"], name
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy flower:5555" in caddyfile and "reverse_proxy web:8000" in caddyfile
    assert "--url_prefix=flower" in services["flower"]["command"]
    # The app knows it is behind one proxy speaking https (secure cookies, the client's address).
    assert services["web"]["environment"]["TRUSTED_PROXIES"] == "1"
    assert services["web"]["environment"]["PUBLIC_BASE_URL"].startswith("https://")


def test_no_secret_appears_on_any_command_line() -> None:
    services: dict[str, Any] = yaml.safe_load(compose_config(REQUIRED).stdout)["services"]
    for name, service in services.items():
        lines = [service.get("command") or [], service.get("entrypoint") or [], service.get("healthcheck", {})]
        text = repr(lines)
        for variable, value in REQUIRED.items():
            for secret in {value, value.partition(":")[2]} - {""}:
                assert secret not in text, f"{variable} on the command line of {name}"
    # Flower takes its credentials from FLOWER_BASIC_AUTH in its environment (flower/command.py,
    # apply_env_options), and no other service gets them.
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == REQUIRED["FLOWER_BASIC_AUTH"]
    assert [name for name, s in services.items() if "FLOWER_BASIC_AUTH" in (s.get("environment") or {})] == ["flower"]


def test_no_default_credential_is_written_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in REQUIRED:
        assert f"${{{variable}:?" in text, variable  # required, never ${VAR:-default}
        assert f"${{{variable}:-" not in text, variable
    assert ":-admin" not in text


def test_gunicorn_in_compose_and_the_image_opens_no_control_socket() -> None:
    services: dict[str, Any] = yaml.safe_load(compose_config(REQUIRED).stdout)["services"]
    assert "--no-control-socket" in services["web"]["command"]
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert "gunicorn" in cmd and "--no-control-socket" in cmd
