import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import override_settings

from titanflow.simulator.tests.helpers import order_update, send

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_a_bad_scenario_file_stops_the_command_naming_rule_and_field(tmp_path):
    scenario = _write(tmp_path, "s.json", {"rules": [{"error_code": 1}, {"error_code": "x"}]})

    with pytest.raises(CommandError, match="rule 1.*error_code"):
        call_command("meta_simulator", "--scenario", scenario)


def test_a_scenario_file_that_is_not_json_stops_the_command(tmp_path):
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("meta_simulator", "--scenario", _write(tmp_path, "s.json", "{rules"))


def test_a_bad_world_file_stops_the_command(tmp_path):
    world = _write(tmp_path, "w.json", {"accounts": [{"waba_id": "1", "colour": "red"}]})

    with pytest.raises(CommandError, match=r"accounts\[0\].*colour"):
        call_command("meta_simulator", "--world", world)


@override_settings(META_APP_SECRET="")
def test_webhooks_without_any_app_secret_are_refused():
    with pytest.raises(CommandError, match="app_secret"):
        call_command("meta_simulator", "--webhook-url", "http://127.0.0.1:9/hook")


def test_the_command_serves_a_world_file_and_prints_its_url(tmp_path):
    world = {
        "accounts": [{"waba_id": "7", "name": "Shop", "access_token": "t"}],
        "phones": [{"phone_number_id": "70", "waba_id": "7", "max_mps": 3}],
        "templates": [
            {"waba_id": "7", "name": "hello", "language": "en", "components": []},
        ],
    }
    command = [sys.executable, "manage.py", "meta_simulator", "--port", "0"]
    command += ["--world", _write(tmp_path, "w.json", world)]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        line = process.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        body = {
            **order_update("15550001"),
            "template": {"name": "hello", "language": {"code": "en"}},
        }
        answer = send(url, body, phone="70", token="t")
        stats = requests.get(f"{url}/_sim/stats", timeout=5).json()
        brief = requests.get(f"{url}/_sim/stats?brief=1", timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()

    assert line.startswith("Meta simulator listening on http://127.0.0.1:")
    assert answer.status_code == 200
    assert stats["accepted_by_phone"] == {"70": 1}
    # What a poller reads: the totals, without the per-key maps and percentiles.
    assert brief["accepted_total"] == 1
    assert "accepted_by_recipient" not in brief and "latency_ms" not in brief["webhooks"]
    assert brief["webhooks"]["pending"] == stats["webhooks"]["pending"]
    assert process.returncode == 0
