"""The client's side of trust: a bearer token never crosses a network in the clear unless
the caller says the network is trusted, and a token file open to others is warned about."""

import logging

import grpc
import pytest

from flare.bridge import RemoteEnv
from flare.bridge.security import is_loopback_address, read_token_file, token_file_warning
from flare.cli import main

FAR = "10.255.255.1:1"  # beyond loopback, and never reached: the checks come first
REFUSAL = "refusing to send the bearer token to '10.255.255.1:1' without TLS"


class Reached(Exception):
    """Raised where the client would start connecting."""


@pytest.fixture
def no_connections(monkeypatch):
    def channel(*args, **kwargs):
        raise Reached(args[0])

    monkeypatch.setattr(grpc, "insecure_channel", channel)
    monkeypatch.setattr(grpc, "secure_channel", channel)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",
        "127.3.2.1:1",
        "[::1]:50051",
        "localhost:50051",
        "LOCALHOST:1",
        "localhost",
        "::1",
        "ipv4:127.0.0.1:1,127.0.0.2:2",
        "ipv6:[::1]:1",
        "dns:///localhost:1",
        "dns:localhost:1",
        "unix:/tmp/simulator.sock",
    ],
)
def test_loopback_addresses(address):
    assert is_loopback_address(address)


@pytest.mark.parametrize(
    "address",
    [
        FAR,
        "0.0.0.0:1",
        "example.com:443",
        "localhost.example.com:1",
        "[2001:db8::1]:1",
        "ipv4:127.0.0.1:1,10.0.0.1:2",
        "dns://8.8.8.8/example.com:1",
        "dns://8.8.8.8",
        "xds:///simulator",
        "",
    ],
)
def test_addresses_beyond_loopback(address):
    assert not is_loopback_address(address)


def test_a_token_in_the_clear_beyond_loopback_is_refused_before_connecting(no_connections):
    with pytest.raises(ValueError) as info:
        RemoteEnv(FAR, token="s3cret")
    assert str(info.value).startswith(REFUSAL)
    assert "pass insecure=True if this network is trusted" in str(info.value)


def test_insecure_tls_or_loopback_pass_the_check(no_connections, tmp_path):
    with pytest.raises(Reached):
        RemoteEnv(FAR, token="s3cret", insecure=True)
    cert = tmp_path / "root.pem"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(Reached):
        RemoteEnv(FAR, token="s3cret", tls_root_cert=str(cert))
    with pytest.raises(Reached):
        RemoteEnv("127.0.0.1:1", token="s3cret")
    with pytest.raises(Reached):
        RemoteEnv(FAR)  # no token: nothing to leak


def test_insecure_is_not_sent_as_session_config(no_connections, monkeypatch):
    import flare.bridge.client as client

    seen = {}

    def open_session(self):
        seen.update(self._open_request.config)

    monkeypatch.setattr(grpc, "insecure_channel", lambda *a, **k: None)
    monkeypatch.setattr(client.pb_grpc, "SimulatorStub", lambda channel: None)
    monkeypatch.setattr(client.RemoteEnv, "_open_session", open_session)
    RemoteEnv(FAR, token="s3cret", insecure=True, game_name="CartPole-v1")
    assert seen == {"game_name": "CartPole-v1"}


# ----- token files ----------------------------------------------------------------------------
@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    return path


def test_a_token_file_open_to_others_is_warned_about(token_file, caplog):
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="flare.bridge.security"):
        assert read_token_file(token_file) == "s3cret"
    assert [r.getMessage() for r in caplog.records] == [token_file_warning(token_file)]
    assert token_file_warning(token_file) == (
        f"the token file {token_file} is open to its group or others (mode 0644); keep it "
        f"to its owner: chmod 600 {token_file}"
    )


def test_a_private_token_file_is_not(token_file, caplog):
    token_file.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="flare.bridge.security"):
        assert read_token_file(token_file) == "s3cret"
    assert not caplog.records
    assert token_file_warning(token_file) is None


def test_an_empty_token_file_is_an_error(tmp_path):
    empty = tmp_path / "token"
    empty.write_text(" \n")
    empty.chmod(0o600)
    with pytest.raises(ValueError, match="is empty"):
        read_token_file(empty)


# ----- the command line ---------------------------------------------------------------------
@pytest.fixture
def unreachable(monkeypatch):
    """check-sim stops where it would first reach the simulator."""
    import flare.compliance.runner as runner

    def wait_until_reachable(target):
        raise ValueError(f"reached, token {target.token!r}")

    monkeypatch.setattr(runner, "wait_until_reachable", wait_until_reachable)


def test_check_sim_refuses_a_token_in_the_clear_beyond_loopback(token_file, unreachable, capsys):
    token_file.chmod(0o600)
    assert main(["check-sim", FAR, "--token-file", str(token_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flare check-sim: {REFUSAL}")
    assert "pass --insecure if this network is trusted" in err
    assert "reached" not in err


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o600, False)])
def test_check_sim_insecure_sends_it_and_warns_about_the_file(
    token_file, unreachable, capsys, mode, warned
):
    token_file.chmod(mode)
    assert main(["check-sim", FAR, "--token-file", str(token_file), "--insecure"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "flare check-sim: reached, token 's3cret'"
    warning = f"flare check-sim: warning: the token file {token_file} is open to its group"
    assert any(line.startswith(warning) for line in lines) == warned
    assert len(lines) == (2 if warned else 1)


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o600, False)])
def test_serve_warns_about_a_token_file_open_to_others(
    token_file, monkeypatch, capsys, mode, warned
):
    import flare.bridge.server as server

    def serve(factory, address, **kwargs):
        raise ValueError(f"served with token {kwargs['token']!r}")

    monkeypatch.setattr(server, "serve", serve)
    token_file.chmod(mode)
    argv = ["serve", "tests.scripts.sim_factory:make_env", "--token-file", str(token_file)]
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "flare serve: served with token 's3cret'"
    warning = f"flare serve: warning: the token file {token_file} is open to its group"
    assert any(line.startswith(warning) for line in lines) == warned
    assert len(lines) == (2 if warned else 1)
