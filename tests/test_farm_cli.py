"""``flare farm``: N local servers, their farm file, checked and stopped together."""

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from flare.bridge.farm import read_farm_file
from flare.cli import main
from flare.farm.local import LocalFarm, serve_command


@pytest.mark.slow
def test_flare_farm_starts_checks_and_stops_its_servers_together(tmp_path, capsys):
    farm_file = tmp_path / "farm.txt"
    command = [sys.executable, "-m", "flare", "farm", "--servers", "3", "--farm-file",
               str(farm_file), "gym", "--game", "CartPole-v1"]  # fmt: skip
    farm = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = farm.stdout.readline()
        assert "flare farm: 3 servers listening on" in line, line
        addresses = read_farm_file(farm_file)
        assert len(addresses) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
        # check-sim takes the farm file: each server is checked
        assert main(["check-sim", str(farm_file), "--only", "server-info"]) == 0
        out = capsys.readouterr().out
        assert all(f"checking the simulator at {a}" in out for a in addresses)
        assert "3 checks: 3 passed" in out
    finally:
        os.kill(farm.pid, signal.SIGTERM)
        assert farm.wait(timeout=30) == 0
    assert not farm_file.exists()
    for address in addresses:  # every server is gone
        channel = grpc.insecure_channel(address)
        with pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=1)
        channel.close()


def test_a_farm_picks_the_ports_itself():
    with pytest.raises(ValueError, match="--host, not --address"):
        serve_command(["gym", "--address", "127.0.0.1:5"])
    with pytest.raises(ValueError, match="needs the TARGET"):
        serve_command(["--game", "CartPole-v1"])
    with pytest.raises(ValueError, match="servers must be in"):
        LocalFarm(["true"], 0)


def test_a_server_that_fails_to_start_stops_the_others(tmp_path):
    started = tmp_path / "started"
    script = tmp_path / "sim.py"
    # the first copy to start listens; the others fail
    script.write_text(
        "import os, sys, time\n"
        f"path = {str(started)!r}\n"
        "try:\n"
        "    fd = os.open(path, os.O_CREAT | os.O_EXCL)\n"
        "except FileExistsError:\n"
        "    sys.exit('already one')\n"
        "print('listening on 127.0.0.1:1', flush=True)\n"
        "time.sleep(60)\n"
    )
    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        with LocalFarm([sys.executable, str(script)], 3):
            pass
    assert time.monotonic() - begin < 30
