"""A webhook attempt over HTTPS goes to the checked address, and TLS still
names (and verifies) the URL's host: a real TLS receiver on loopback.

The receiver poses as ``hooks.example``: the name's DNS answer is the one
thing stood in for (``resolve`` answers 127.0.0.1, as a real resolver would
for a name pointing there)."""
from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.services import webhooks


def certificate(tmp_path, name: str):
    """A self-signed certificate for ``name``; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 presenting a certificate for "hooks.example"."""
    monkeypatch.setattr(webhooks, "resolve", lambda host, port, allow: "127.0.0.1")
    cert_path, key_path = certificate(tmp_path, "hooks.example")
    seen = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert_path, seen
    server.shutdown()
    server.server_close()


def item(app, url: str) -> dict:
    with app.app_context():
        sealed = webhooks._seal("whsec_test")
    return {"id": "whd_1", "webhook_id": 1, "event": "message", "body": '{"id":"whd_1"}',
            "attempts": 0, "url": url, "secret": sealed}


def trusting(monkeypatch, cert_path) -> None:
    context = ssl.create_default_context(cafile=str(cert_path))
    monkeypatch.setattr(webhooks, "_tls_context", lambda: context)


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(app, monkeypatch,
                                                                         tls_receiver):
    port, cert_path, seen = tls_receiver
    trusting(monkeypatch, cert_path)
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True

    with app.app_context():
        outcome = webhooks.attempt(item(app, f"https://hooks.example:{port}/hook"))

    assert (outcome.kind, outcome.code) == ("delivered", 204), outcome.error
    assert seen["sni"] == ["hooks.example"] and seen["hosts"] == [f"hooks.example:{port}"]


def test_a_certificate_that_does_not_name_the_host_is_refused(app, monkeypatch, tls_receiver):
    port, cert_path, seen = tls_receiver
    trusting(monkeypatch, cert_path)
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True

    with app.app_context():
        # The same address, by another name: the certificate is for hooks.example.
        outcome = webhooks.attempt(item(app, f"https://elsewhere.example:{port}/hook"))

    assert outcome.kind == "retry" and "Hostname mismatch" in outcome.error, outcome.error
    assert seen["hosts"] == []
