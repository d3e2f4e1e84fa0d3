"""``--tls``: a self-signed certificate made on first start, kept beside codes.csv and reused.

Attendees trust it by its file (``SSL_CERT_FILE=codes-cert.pem``, which httpx and so the openai SDK
read) or by comparing the SHA-256 fingerprint the room prints. The certificate names localhost,
loopback, this machine's name and addresses and every ``--allowed-host``; a name missing from it
makes a new one. Valid 30 days: a workshop, not a service. The private key file is 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

__all__ = ["ensure_certificate", "fingerprint", "machine_names"]

VALID_DAYS = 30


def machine_names(extra: tuple[str, ...] = ()) -> list[str]:
    """localhost, 127.0.0.1, ::1, this machine's name and the addresses it resolves to, and ``extra``."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *extra]
    try:
        names += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass
    return sorted({n for n in names if n and n not in ("0.0.0.0", "::")})


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate's DER bytes, as browsers show it (AB:CD:...)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _covers(cert_path: Path, names: list[str]) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = set(san.get_values_for_type(x509.DNSName)) | {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= have


def _alt_name(name: str) -> object:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def ensure_certificate(cert_path: Path, key_path: Path, names: list[str]) -> tuple[Path, Path]:
    """Reuse the certificate at ``cert_path`` if it covers ``names`` and is valid; else make one."""
    if cert_path.exists() and key_path.exists() and _covers(cert_path, names):
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vizlab room")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False)  # type: ignore[misc]
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
