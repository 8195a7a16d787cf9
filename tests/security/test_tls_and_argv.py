"""TLS verification is on by default; secrets never travel in argv."""

from __future__ import annotations

import datetime
import http.server
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backends.errors import StoreUnavailable
from backends.store import open_store
from rotator.errors import TargetUnavailable
from rotator.targets.teamcity import TeamCityClient


@pytest.fixture
def https_server(tmp_path):
    """A loopback HTTPS server with a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = (
                b'{"version": "tls-test", "data": {"data": {"a": "b"}, "metadata": {"version": 1}}}'
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert_path
    server.shutdown()


def test_teamcity_client_refuses_an_untrusted_certificate(https_server):
    url, cert = https_server
    with pytest.raises(TargetUnavailable) as err:
        TeamCityClient(url, "tok-tls-test-000000", retries=0).server()
    assert "SSLError" in str(err.value) and "tok-tls-test" not in str(err.value)
    assert (
        TeamCityClient(url, "tok-tls-test-000000", retries=0, verify=str(cert)).server()["version"]
        == "tls-test"
    )


def test_vault_store_refuses_an_untrusted_certificate(https_server, monkeypatch):
    url, cert = https_server
    monkeypatch.setenv("VAULT_TOKEN", "s.tls-test-token")
    with pytest.raises(StoreUnavailable):
        open_store("vault", url=url, timeout=2).get_document("airflow/connections/x")
    assert open_store("vault", url=url, ca_bundle=str(cert), timeout=2).get_document("x/y") == {
        "a": "b"
    }


def test_the_daemon_keeps_secrets_out_of_argv(tmp_path, teamcity_sim, teamcity_admin_token):
    config = tmp_path / "rotator.toml"
    config.write_text(
        f'[store]\nkind = "file"\npath = "{tmp_path / "s.db"}"\n[teamcity]\nurl = "{teamcity_sim.url}"\n'
        '[[credentials]]\nname = "t"\ntype = "teamcity-token"\nuser = "airflow-bot"\nconn_id = "c"\n'
    )
    env = {**os.environ, "TEAMCITY_TOKEN": teamcity_admin_token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rotator", "--config", str(config), "run", "--tick", "60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not teamcity_sim.state.find_user("airflow-bot").tokens:  # its first pass rotated
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        issued = [t.value for t in teamcity_sim.state.find_user("airflow-bot").tokens.values()]
        for secret in [teamcity_admin_token, *issued]:
            assert secret.encode() not in cmdline
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
