"""Errors that say where and why (issue 12, item 4): a target that cannot be reached is named
by its full URL (never userinfo, never a query string) with the cause told apart, each with a
hint the user can act on, and stays ``TargetUnavailable`` (retries and exit codes unchanged).

Each cause is produced for real, on loopback: a closed port (refused), a socket that accepts
and never answers (read timeout), a listener whose backlog is full (connect timeout), a name
under ``.invalid`` (RFC 6761: never resolves, without asking the network), a self-signed and a
wrong-name certificate (TLS verification), plain HTTP behind ``https://`` (TLS handshake), a
server that hangs up (closed without an answer). The old text, "TeamCity could not be reached:
GET /app/rest/server after 4 attempt(s) (ConnectionError)", named neither host nor cause.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rotator.errors import TargetUnavailable
from rotator.spec import AirflowSettings
from rotator.targets.http import HttpClient
from rotator.targets.teamcity import TeamCityClient
from tests.fixtures.leaks import register_secret

TOKEN = "tok-error-wording-5e1f0c9a7b3d"
register_secret(TOKEN)


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unavailable(call: Callable[[], object]) -> str:
    with pytest.raises(TargetUnavailable) as err:
        call()
    assert err.value.status is None  # no HTTP status: it never answered
    return str(err.value)


@pytest.fixture
def silent() -> Iterator[str]:
    """A listener that accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server that reads the request, then closes the connection without a word."""
    yield from _raw_server(b"")


@pytest.fixture
def breaks_off() -> Iterator[str]:
    """A server that promises 100 bytes, sends 12, and closes the connection."""
    yield from _raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"version": '
    )


def _raw_server(answer: bytes) -> Iterator[str]:
    """A socket server that answers every request with ``answer`` (maybe nothing), then
    closes the connection."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    stopping = threading.Event()

    def serve() -> None:
        while True:
            conn, _ = sock.accept()
            with conn:
                if stopping.is_set():
                    return
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    address = sock.getsockname()
    yield f"http://127.0.0.1:{address[1]}"
    stopping.set()
    socket.create_connection(address, timeout=5).close()  # wakes accept() to see the flag
    thread.join(timeout=5)
    sock.close()


# -- refused, name, timeouts -----------------------------------------------------------------
def test_refused_names_the_url_and_asks_whether_teamcity_runs_there():
    port = closed_port()
    text = unavailable(
        lambda: TeamCityClient(f"http://127.0.0.1:{port}", TOKEN, retries=1).server()
    )
    assert text.startswith(
        f"TeamCity could not be reached: GET http://127.0.0.1:{port}/app/rest/server: "
        "connection refused"
    ), text
    assert "2 attempt(s)" in text
    assert f"is TeamCity running at http://127.0.0.1:{port}? check [teamcity] url" in text


def test_the_url_shown_never_carries_userinfo_or_a_query():
    port = closed_port()
    http = HttpClient(f"http://rotator:pw-in-url-1234@127.0.0.1:{port}/tc", target="TeamCity")
    http.retries = 0
    text = unavailable(lambda: http.request("GET", "/app/rest/x", params={"q": "qs-secret-99"}))
    assert f"GET http://127.0.0.1:{port}/tc/app/rest/x: connection refused" in text
    assert "pw-in-url" not in text and "rotator:" not in text
    assert "qs-secret" not in text and "?" not in text.split(";")[0]


def test_a_name_that_does_not_resolve_says_so():
    text = unavailable(
        lambda: TeamCityClient("https://teamcity.rotator-test.invalid", TOKEN, retries=0).server()
    )
    assert "GET https://teamcity.rotator-test.invalid:443/app/rest/server" in text
    assert "the name teamcity.rotator-test.invalid does not resolve" in text
    assert "check the host name in [teamcity] url" in text


def test_a_read_timeout_says_connected_but_no_answer(silent):
    client = TeamCityClient(silent, TOKEN, timeout=0.3, retries=0)
    text = unavailable(client.server)
    assert text.startswith(f"TeamCity timed out: GET {silent}/app/rest/server: ")
    assert "connected, but no answer within 0.3s" in text
    assert "raise [teamcity] timeout if it is only slow" in text
    assert "carried out" not in text  # a GET changed nothing


def test_a_read_timeout_on_a_post_warns_it_may_have_happened(silent):
    client = TeamCityClient(silent, TOKEN, timeout=0.3, retries=0)
    text = unavailable(lambda: client.create_token("airflow-bot", "rotator-x-1"))
    assert f"POST {silent}/app/rest/users/airflow-bot/tokens" in text
    assert text.endswith("; the POST may have been carried out all the same")


def test_a_connect_timeout_is_told_from_a_read_timeout():
    """A listener whose accept queue is full: Linux drops further SYNs, so connect() waits."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers: list[socket.socket] = []
        try:
            for _ in range(16):  # fill the queue until a connect attempt times out
                fillers.append(socket.create_connection(address, timeout=0.2))
        except TimeoutError:
            pass
        else:
            pytest.skip("this kernel completes connections beyond a full backlog")
        try:
            client = TeamCityClient(f"http://127.0.0.1:{address[1]}", TOKEN, retries=0)
            client.http.timeout = (0.3, 2.0)
            text = unavailable(client.server)
        finally:
            for filler in fillers:
                filler.close()
    assert "TeamCity timed out" in text and "no connection within 0.3s" in text
    assert f"is http://127.0.0.1:{address[1]} reachable from here" in text


def test_a_hang_up_without_an_answer_says_so(hangs_up):
    text = unavailable(lambda: TeamCityClient(hangs_up, TOKEN, retries=0).server())
    assert f"GET {hangs_up}/app/rest/server: the connection was closed without an answer" in text


def test_an_answer_that_breaks_off_is_retried_then_says_so(breaks_off):
    """Before: ``requests.ChunkedEncodingError`` escaped the error tree, unretried."""
    text = unavailable(lambda: TeamCityClient(breaks_off, TOKEN, retries=1).server())
    assert f"GET {breaks_off}/app/rest/server: the answer broke off before its end" in text
    assert "2 attempt(s)" in text


def test_airflow_errors_point_to_the_airflow_section():
    from rotator.targets.airflow_api import AirflowApi

    port = closed_port()
    api = AirflowApi(AirflowSettings(url=f"http://127.0.0.1:{port}", retries=0))
    text = unavailable(lambda: api.token("teamcity-bot", "pw-wording-0123456789"))
    assert f"Airflow could not be reached: POST http://127.0.0.1:{port}/auth/token" in text
    assert f"is Airflow running at http://127.0.0.1:{port}? check [airflow] url" in text
    assert "pw-wording" not in text


# -- TLS -------------------------------------------------------------------------------------
def certificate(tmp_path: Path, names: list[x509.GeneralName]) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for ``names``, as the TLS suite builds one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rotator-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
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
    return cert_path, key_path


class _Ok(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"version": "wording"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(tls: tuple[Path, Path] | None) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def https(tmp_path) -> Iterator[Callable[[list[x509.GeneralName]], tuple[str, Path]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(names: list[x509.GeneralName]) -> tuple[str, Path]:
        cert, key = certificate(tmp_path, names)
        server, url = serve((cert, key))
        servers.append(server)
        return url, cert

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


def test_an_untrusted_certificate_asks_for_the_ca_bundle(https):
    url, cert = https(LOOPBACK)
    text = unavailable(lambda: TeamCityClient(url, TOKEN, retries=0).server())
    assert f"GET {url}/app/rest/server: TLS verification failed: " in text
    assert "self-signed certificate" in text or "certificate verify failed" in text
    assert "set [teamcity] ca_bundle to your CA file" in text
    assert TeamCityClient(url, TOKEN, retries=0, verify=str(cert)).server() == {
        "version": "wording"
    }


def test_a_certificate_for_another_name_says_which_name(https):
    url, cert = https([x509.DNSName("teamcity.example.test")])
    text = unavailable(lambda: TeamCityClient(url, TOKEN, retries=0, verify=str(cert)).server())
    assert "TLS verification failed" in text and "mismatch" in text
    assert "the certificate is not issued for 127.0.0.1" in text


def test_a_ca_bundle_that_does_not_vouch_says_so(https, tmp_path):
    url, _ = https(LOOPBACK)
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _ = certificate(other, LOOPBACK)
    text = unavailable(lambda: TeamCityClient(url, TOKEN, retries=0, verify=str(other_ca)).server())
    assert "the CA file in [teamcity] ca_bundle does not vouch for this certificate" in text


def test_https_to_a_plain_http_server_is_a_handshake_failure():
    server, url = serve(None)
    try:
        text = unavailable(lambda: TeamCityClient(url, TOKEN, retries=0).server())
    finally:
        server.shutdown()
        server.server_close()
    assert f"GET {url}/app/rest/server: TLS handshake failed" in text
    assert "if it serves plain HTTP, use http:// in [teamcity] url" in text


def test_every_cause_is_retried_like_before():
    """Wording changed, behaviour did not: still ``TargetUnavailable``, still retried."""
    port = closed_port()
    text = unavailable(
        lambda: TeamCityClient(f"http://127.0.0.1:{port}", TOKEN, retries=3).server()
    )
    assert "4 attempt(s)" in text
