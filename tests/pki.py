"""A test PKI, made with openssl: CAs and the certificates they sign, each as NAME.crt and
NAME.key in one folder. The one place a test makes a CA (the tls-proxy pods, the
change-notifier's https receivers)."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# A server certificate for a test server on this host.
SERVER = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"


@dataclass(frozen=True)
class Pki:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def text(self, name: str) -> str:
        return self.path(name).read_text()

    def serving(self, name: str) -> ssl.SSLContext:
        """A server's TLS context with the certificate and key NAME."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.path(f"{name}.crt"), self.path(f"{name}.key"))
        return context


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(pki: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", f"/CN={name}", "-keyout", str(pki / f"{name}.key"),
            "-out", str(pki / f"{name}.crt"))


def issue(pki: Path, ca: str, name: str, extension: str) -> None:
    """NAME.crt signed by CA, with these X.509v3 extensions (openssl's -extfile lines)."""
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN={name}", "-keyout", str(pki / f"{name}.key"),
            "-out", str(pki / f"{name}.csr"))
    (pki / f"{name}.ext").write_text(extension)
    openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / f"{ca}.crt"),
            "-CAkey", str(pki / f"{ca}.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(pki / f"{name}.ext"), "-out", str(pki / f"{name}.crt"))
