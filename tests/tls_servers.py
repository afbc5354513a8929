"""Test helpers: generate a test CA and leaf certificates, start nginx and Python-ssl servers.

Shared by ``tests/test_tls_probe.py`` and ``bench/tls_vs_testssl.py`` so that both look at
exactly the same servers. Every server listens on 127.0.0.1 only. sslyze refuses a
self-signed CA:TRUE certificate as a leaf, so leaves always carry ``CA:FALSE``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crm_audit.core.net import free_port
from crm_audit.core.processes import stop_processes

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HSTS_GOOD = "max-age=63072000; includeSubDomains"


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as objects and as PEM files on disk."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path


def _new_key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


def _write(directory: Path, name: str, cert: x509.Certificate, key, chain: Iterable[x509.Certificate] = ()) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    pem = cert.public_bytes(serialization.Encoding.PEM)
    pem += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return Issued(cert, key, cert_path, key_path)


def make_ca(directory: Path, name: str = "crm-audit test CA", key: str = "ec256") -> Issued:
    """A self-signed root CA (CA:TRUE) used only to sign the test leaves."""
    private_key = _new_key(key)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    return _write(directory, "ca", cert, private_key)


def make_leaf(
    directory: Path,
    name: str,
    ca: Issued | None,
    *,
    hostnames: Iterable[str] = ("localhost",),
    ips: Iterable[str] = ("127.0.0.1", "::1"),
    key: str = "rsa2048",
    valid_from_days: float = -1,
    valid_to_days: float = 90,
    sig_hash: hashes.HashAlgorithm | None = None,
) -> Issued:
    """A server certificate (CA:FALSE) signed by ``ca``, or self-signed when ``ca`` is None.

    ``valid_from_days`` / ``valid_to_days`` are relative to now, so a negative ``valid_to_days``
    gives an expired certificate and a positive ``valid_from_days`` one not yet valid.
    """
    private_key = _new_key(key)
    first = next(iter(hostnames), None) or next(iter(ips))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)])
    issuer_name = ca.cert.subject if ca else subject
    signer = ca.key if ca else private_key
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_from_days))
        .not_valid_after(now + dt.timedelta(days=valid_to_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, isinstance(private_key, rsa.RSAPrivateKey), False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    if isinstance(sig_hash, hashes.SHA1):
        cert = _sign_sha1_with_openssl(directory, name, builder.sign(signer, hashes.SHA256()), ca, private_key)
    else:
        cert = builder.sign(signer, sig_hash or hashes.SHA256())
    return _write(directory, name, cert, private_key)


def _sign_sha1_with_openssl(directory: Path, name: str, draft: x509.Certificate, ca: Issued | None, key) -> x509.Certificate:
    """Re-sign ``draft`` with SHA-1 through the openssl CLI (cryptography refuses SHA-1 signatures)."""
    if ca is None:
        raise ValueError("SHA-1 test certificates are CA-signed")
    work = directory / f"{name}-sha1"
    work.mkdir(parents=True, exist_ok=True)
    csr = x509.CertificateSigningRequestBuilder().subject_name(draft.subject).sign(key, hashes.SHA256())
    (work / "req.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    sans = ",".join(
        [f"DNS:{v}" for v in draft.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)]
        + [f"IP:{v}" for v in draft.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)]
    )
    (work / "ext.cnf").write_text(
        f"basicConstraints=critical,CA:FALSE\nsubjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
    )
    days = max(1, (draft.not_valid_after_utc - dt.datetime.now(dt.UTC)).days)
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(work / "req.csr"), "-CA", str(ca.cert_path), "-CAkey", str(ca.key_path),
         "-CAcreateserial", "-sha1", "-days", str(days), "-extfile", str(work / "ext.cnf"), "-out", str(work / "leaf.crt")],
        check=True, capture_output=True,
    )
    return x509.load_pem_x509_certificate((work / "leaf.crt").read_bytes())


# --------------------------------------------------------------------------- ports


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


# --------------------------------------------------------------------------- nginx


@dataclass
class NginxSite:
    """One HTTPS server block (and optionally a plain-HTTP block) of the test nginx."""

    name: str
    cert: Issued
    protocols: str = "TLSv1.2 TLSv1.3"
    ciphers: str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    hsts: str | None = HSTS_GOOD
    cookie: str | None = "sid=1; Path=/; Secure; HttpOnly"
    #: "redirect" (301 to https), "serve" (200 over plain HTTP) or None (no plain-HTTP port)
    http: str | None = "redirect"
    extra: str = ""
    port: int = 0
    http_port: int | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"


def _nginx_site_conf(site: NginxSite) -> str:
    headers = ""
    if site.hsts:
        headers += f'        add_header Strict-Transport-Security "{site.hsts}" always;\n'
    if site.cookie:
        headers += f'        add_header Set-Cookie "{site.cookie}";\n'
    conf = f"""
    server {{
        listen 127.0.0.1:{site.port} ssl;
        server_name localhost;
        ssl_certificate {site.cert.cert_path};
        ssl_certificate_key {site.cert.key_path};
        ssl_protocols {site.protocols};
        ssl_ciphers "{site.ciphers}";
        ssl_prefer_server_ciphers on;
        {site.extra}
        location / {{
{headers}            return 200 "{site.name}\\n";
        }}
    }}
"""
    if site.http and site.http_port:
        body = (
            f"return 301 https://localhost:{site.port}$request_uri;"
            if site.http == "redirect"
            else f'return 200 "{site.name} over plain http\\n";'
        )
        conf += f"""
    server {{
        listen 127.0.0.1:{site.http_port};
        server_name localhost;
        location / {{ {body} }}
    }}
"""
    return conf


class NginxServer:
    """One Debian nginx process (run as root, ``daemon off``) serving several test sites."""

    def __init__(self, workdir: Path, sites: list[NginxSite]) -> None:
        self.workdir = workdir
        self.sites = {s.name: s for s in sites}
        self.proc: subprocess.Popen[bytes] | None = None

    def __getitem__(self, name: str) -> NginxSite:
        return self.sites[name]

    def start(self) -> NginxServer:
        """Allocate ports, write the config, start nginx and wait until every port answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for site in self.sites.values():
            site.port = site.port or free_port()
            if site.http:
                site.http_port = site.http_port or free_port()
        w = self.workdir
        conf = f"""daemon off;
master_process on;
worker_processes 1;
user root;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
{''.join(_nginx_site_conf(s) for s in self.sites.values())}
}}
"""
        conf_path = w / "nginx.conf"
        conf_path.write_text(conf)
        test = subprocess.run([NGINX, "-t", "-p", str(w), "-c", str(conf_path)], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx config rejected:\n{test.stderr}\n{conf}")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(w), "-c", str(conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for site in self.sites.values():
                wait_for_port(site.port)
                if site.http_port:
                    wait_for_port(site.http_port)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError((w / "error.log").read_text() if (w / "error.log").exists() else "nginx did not start") from exc
        return self

    def stop(self) -> None:
        """Stop the nginx this object started (by its PID only)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- Python servers


@dataclass
class PyServer:
    """A Python ``http.server`` on 127.0.0.1 (TLS when a certificate is given), in its own process.

    Its own process, not a thread: in the scanner's process the server's handshakes would
    compete with sslyze's threads for the GIL and the scan would time the test rig.
    """

    cert: Issued | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    port: int = 0
    _proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.cert else "http"
        return f"{scheme}://localhost:{self.port}/"

    def start(self) -> PyServer:
        config = {
            "paths": [str(self.cert.cert_path), str(self.cert.key_path)] if self.cert else None,
            "headers": self.headers, "status": self.status, "port": self.port,
        }
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", json.dumps(config)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("Python test server did not start")
        self.port = int(line)
        return self

    def stop(self) -> None:
        """Stop the server process this object started (by its own PID)."""
        if self._proc is not None:
            stop_processes([self._proc])
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> PyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_forever(paths: list[str] | None, headers: dict[str, str], status: int, port: int) -> None:
    """Child-process body of :class:`PyServer`: bind, print the port, serve until terminated."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = b"ok\n"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = _QuietServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if paths:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*paths)
        server.tls = tls
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)


class _QuietServer(ThreadingHTTPServer):
    """Threading server that does the TLS handshake in the handler thread, quietly.

    A scanner opens many connections that fail the handshake on purpose: doing it in
    ``accept`` would block the single accept loop, and printing each failure is noise.
    """

    tls: ssl.SSLContext | None = None
    #: socketserver's default backlog of 5 overflows under a scanner: SYN retries cost 1 s each
    request_queue_size = 128

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(5)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def shutdown_request(self, request) -> None:  # type: ignore[override]
        try:
            super().shutdown_request(request)
        except OSError:
            pass

    def handle_error(self, request: object, client_address: object) -> None:
        pass


# --------------------------------------------------------------------------- scenarios

MOZ_CURVES = "ssl_ecdh_curve X25519:prime256v1:secp384r1;"


def make_pki(directory: Path) -> dict[str, Issued]:
    """The test CA and one leaf per certificate scenario."""
    ca = make_ca(directory)
    return {
        "ca": ca,
        "good": make_leaf(directory, "good", ca),
        "weak": make_leaf(directory, "weak", ca, key="rsa1024"),
        "expired": make_leaf(directory, "expired", ca, valid_from_days=-200, valid_to_days=-2),
        "notyet": make_leaf(directory, "notyet", ca, valid_from_days=3, valid_to_days=90),
        "wrong": make_leaf(directory, "wrong", ca, hostnames=("other.example",), ips=()),
        "selfsigned": make_leaf(directory, "selfsigned", None),
        "sha1": make_leaf(directory, "sha1", ca, sig_hash=hashes.SHA1()),
        "soon": make_leaf(directory, "soon", ca, valid_to_days=10),
    }


def nginx_sites(pki: dict[str, Issued]) -> list[NginxSite]:
    """The nginx scenarios shared by the tests and the benchmark (one server block each).

    Debian's OpenSSL 3 offers TLS 1.0/1.1 only at @SECLEVEL=0, loads a 1024-bit RSA key
    only at @SECLEVEL<=1, and has no RC4/3DES/EXPORT suites at all; NULL and anonymous
    suites exist at @SECLEVEL=0.
    """
    good = pki["good"]
    return [
        NginxSite("good", good, extra=MOZ_CURVES),
        NginxSite("tls10", good, protocols="TLSv1 TLSv1.1 TLSv1.2",
                  ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:@SECLEVEL=0", extra=MOZ_CURVES),
        NginxSite("weakkey", pki["weak"], ciphers="ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=1", extra=MOZ_CURVES),
        NginxSite("expired", pki["expired"], extra=MOZ_CURVES),
        NginxSite("wronghost", pki["wrong"], extra=MOZ_CURVES),
        NginxSite("selfsigned", pki["selfsigned"], extra=MOZ_CURVES),
        NginxSite("sha1", pki["sha1"], ciphers="ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", extra=MOZ_CURVES),
        NginxSite("nohsts", good, hsts=None, extra=MOZ_CURVES),
        NginxSite("shorthsts", good, hsts="max-age=3600", extra=MOZ_CURVES),
        NginxSite("noredirect", good, http="serve", extra=MOZ_CURVES),
        NginxSite("weakciphers", good, protocols="TLSv1.2",
                  ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-NULL-SHA:AECDH-AES128-SHA:AES128-SHA:@SECLEVEL=0",
                  cookie="sid=1; Path=/; HttpOnly", extra=MOZ_CURVES),
    ]


def python_servers(pki: dict[str, Issued]) -> dict[str, PyServer]:
    """Python-ssl scenarios: a not-yet-valid certificate and one expiring within 30 days."""
    return {
        "py_notyet": PyServer(cert=pki["notyet"], headers={"Strict-Transport-Security": "max-age=63072000"}),
        "py_soon": PyServer(cert=pki["soon"], headers={"Strict-Transport-Security": HSTS_GOOD}),
    }


def probe_context(base_url: str, workdir: Path, ca_bundle: str | None = None, scope: list[str] | None = None,
                  verify_tls: bool = True, **options: object):
    """A real crm-audit ProbeContext (Profile + Target) for the tls probe, as the runner builds it."""
    from crm_audit.core.probe import ProbeContext
    from crm_audit.core.profile import Profile
    from crm_audit.core.target import Target
    from crm_audit_plugins.tls import TlsOptions

    target: dict[str, object] = {"base_url": base_url, "ca_bundle": ca_bundle, "verify_tls": verify_tls}
    if scope:
        target["scope"] = scope
    profile = Profile.model_validate({"name": "tls-test", "target": target})
    return ProbeContext(
        run_id="tls-test", profile=profile, target=Target(profile), adapter=None,
        options=TlsOptions.model_validate(options), allow_writes=False, allow_disruptive=False, workdir=workdir,
    )


def start_all(servers: list[NginxServer | PyServer]) -> Callable[[], None]:
    """Start several servers; return a function that stops them all (in reverse order)."""
    started: list[NginxServer | PyServer] = []
    try:
        for s in servers:
            s.start()
            started.append(s)
    except BaseException:
        for s in reversed(started):
            s.stop()
        raise

    def stop() -> None:
        for s in reversed(started):
            s.stop()

    return stop


def tmp_env_ok() -> bool:
    """True when nginx can be started here (root and the binary present)."""
    return os.geteuid() == 0 and Path(NGINX).exists()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--serve":
    _cfg = json.loads(sys.argv[2])
    _serve_forever(_cfg["paths"], _cfg["headers"], _cfg["status"], _cfg["port"])
