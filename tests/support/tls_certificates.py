"""A throw-away certificate authority for TLS tests, made with the openssl command.

``ca.pem`` signs ``localhost`` (for the names localhost and 127.0.0.1) and
``elsewhere`` (for mail.example.org only); ``stranger`` is a self-signed
certificate for localhost that no CA vouches for.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_SERVER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class ThrowawayCA:
    def __init__(self, root: Path) -> None:
        assert shutil.which("openssl"), "openssl is not installed (apt-get install openssl)"
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req", "-x509", *_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=shop test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=root,
        )  # fmt: skip
        self._issue("localhost", "DNS:localhost,IP:127.0.0.1")
        self._issue("elsewhere", "DNS:mail.example.org")
        _openssl(
            "req", "-x509", *_KEY, "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            cwd=root,
        )  # fmt: skip

    def _issue(self, name: str, alt_names: str) -> None:
        (self.root / f"{name}.ext").write_text(f"{_SERVER_EXTENSIONS}subjectAltName={alt_names}\n")
        _openssl("req", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=self.root)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=self.root,
        )  # fmt: skip

    @property
    def ca_file(self) -> str:
        return str(self.root / "ca.pem")

    def server_context(self, name: str) -> ssl.SSLContext:
        """A server's TLS context presenting certificate ``name`` (localhost, elsewhere, stranger)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.root / f"{name}.pem", self.root / f"{name}.key")
        return context
