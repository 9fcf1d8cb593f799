"""Beyond loopback: TLS for the channel and a bearer token for every simulator call."""

import datetime
import ipaddress
import signal

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flare.bridge import RemoteEnv, SimulatorError, serve
from flare.bridge.security import TLSFiles
from flare.testing import ChainEnv
from tests.test_serve_cli import flare_serve

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1, made for the test."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSFiles(cert_path, key_path)


def make_env(seed=None):
    return ChainEnv(goal=1000, max_steps=10)


@pytest.fixture
def secure_server(tls_files):
    server = serve(make_env, "127.0.0.1:0", tls=tls_files, token=TOKEN)
    yield server
    server.stop(0)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
def test_tls_and_token_work_together(secure_server, tls_files, stream):
    env = RemoteEnv(
        secure_server.address, tls_root_cert=str(tls_files.cert), token=TOKEN, stream=stream
    )
    env.reset()
    observations, _, _ = env.step({"action": np.array([1])})
    assert observations["sensor"].tolist() == [1.0]
    env.close()


@pytest.mark.parametrize("token", [None, "wrong"], ids=["missing", "wrong"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
def test_calls_without_the_token_are_unauthenticated(secure_server, tls_files, token, stream):
    with pytest.raises(SimulatorError) as info:
        RemoteEnv(
            secure_server.address, tls_root_cert=str(tls_files.cert), token=token, stream=stream
        )
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert secure_server.servicer.num_sessions == 0


def test_health_stays_open_for_load_balancers(secure_server, tls_files):
    credentials = grpc.ssl_channel_credentials(tls_files.cert.read_bytes())
    with grpc.secure_channel(secure_server.address, credentials) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_plaintext_client_cannot_talk_to_a_tls_server(secure_server):
    with pytest.raises(SimulatorError) as info:
        RemoteEnv(secure_server.address, token=TOKEN, timeout_s=2)
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_beyond_loopback_needs_tls_and_a_token_or_insecure(tls_files):
    with pytest.raises(ValueError, match="without TLS and a bearer token"):
        serve(make_env, "0.0.0.0:0")
    with pytest.raises(ValueError, match="without TLS and a bearer token"):
        serve(make_env, "0.0.0.0:0", tls=tls_files)  # TLS alone is not enough
    server = serve(make_env, "0.0.0.0:0", tls=tls_files, token=TOKEN)
    try:
        env = RemoteEnv(f"127.0.0.1:{server.port}", tls_root_cert=str(tls_files.cert), token=TOKEN)
        env.reset()
        env.close()
    finally:
        server.stop(0)


def test_flare_serve_with_tls_and_token(tls_files, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)  # (a token file open to others is warned about, before the address)
    args = [
        "tests.scripts.sim_factory:make_env",
        "--tls-cert",
        str(tls_files.cert),
        "--tls-key",
        str(tls_files.key),
        "--token-file",
        str(token_file),
    ]
    with flare_serve(*args) as (proc, address):
        env = RemoteEnv(address, tls_root_cert=str(tls_files.cert), token=TOKEN)
        assert env.reset()["sensor"].tolist() == [0.0]
        env.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    assert proc.returncode == 0
