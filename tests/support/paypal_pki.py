"""A test PKI standing in for PayPal's: a root, an intermediate and signing certificates issued
the way DigiCert issues PayPal's (subjectAltName and common name
``messageverificationcerts.paypal.com``, serverAuth, a 2048-bit RSA key), plus the headers PayPal
sends, signed the way PayPal signs. The verifier is given the test root as its trust anchor in
place of the pinned DigiCert roots; nothing here touches the network."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from recovery.gateways import paypal

LIVE_NAME = "messageverificationcerts.paypal.com"
SANDBOX_NAME = "messageverificationcerts.sandbox.paypal.com"
WEBHOOK_ID = "8PT597110X687430LKGECATA"
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
TRANSMISSION_ID = "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
# Every certificate is valid for years around the tests' times (2026) and the real clock.
NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2045, 1, 1, tzinfo=UTC)

Key = rsa.RSAPrivateKey


@cache
def key(name: str, bits: int = 2048) -> Key:
    """One RSA key per name (generated once per test session)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_encipherment=True,
    key_cert_sign=False,
    crl_sign=False,
    content_commitment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def authority(
    common_name: str,
    own_key: Key,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: Key | None = None,
    path_length: int | None = None,
    is_ca: bool = True,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject if issuer else _name(common_name))
        .public_key(own_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True)
        .add_extension(_CA_USAGE if is_ca else _LEAF_USAGE, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(own_key.public_key()), critical=False
        )
    )
    signer = issuer_key or own_key
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def leaf(
    signing_key: Key,
    issuer: x509.Certificate,
    issuer_key: Key,
    *,
    dns: str = LIVE_NAME,
    common_name: str | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name or dns))
        .issuer_name(issuer.subject)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    intermediate: x509.Certificate
    signer: x509.Certificate  # PayPal's live signing certificate
    signing_key: Key

    @property
    def served(self) -> bytes:
        """What PayPal's cert URL serves: the signing certificate alone."""
        return pem(self.signer)

    def trust(self, environment: paypal.Environment = "live") -> paypal.Trust:
        return paypal.Trust.for_environment(
            environment, anchors=[self.root], intermediates=[self.intermediate]
        )

    def anchors_file(self, folder: Path) -> Path:
        path = folder / "test-anchors.pem"
        path.write_bytes(pem(self.root))
        return path

    def intermediates_file(self, folder: Path) -> Path:
        path = folder / "test-intermediates.pem"
        path.write_bytes(pem(self.intermediate))
        return path


@cache
def pki() -> Pki:
    root = authority("Test Root CA", key("root"))
    intermediate = authority(
        "Test EV Server CA", key("intermediate"), issuer=root, issuer_key=key("root"), path_length=0
    )
    signer = leaf(key("signer"), intermediate, key("intermediate"))
    return Pki(root, intermediate, signer, key("signer"))


class Server:
    """The fetcher the verifier is given: serves bodies by URL and remembers each call."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.documents[url]


def sign_message(signing_key: Key, message: str) -> str:
    return base64.b64encode(
        signing_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def headers_for(
    body: bytes,
    signing_key: Key | None = None,
    *,
    sent_at: datetime,
    webhook_id: str = WEBHOOK_ID,
    cert_url: str = CERT_URL,
    algo: str = "SHA256withRSA",
    transmission_id: str = TRANSMISSION_ID,
) -> dict[str, str]:
    """Headers exactly as PayPal sends them, signed the way PayPal signs."""
    when = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{transmission_id}|{when}|{webhook_id}|{zlib.crc32(body)}"
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": when,
        "PAYPAL-TRANSMISSION-SIG": sign_message(signing_key or pki().signing_key, message),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": algo,
    }


@dataclass
class Made:
    verifier: paypal.Verifier
    server: Server = field(default_factory=lambda: Server({}))


def verifier(
    documents: dict[str, bytes] | None = None,
    *,
    environment: paypal.Environment = "live",
    cache: paypal.CertificateCache | None = None,
    **options: object,
) -> Made:
    """A verifier trusting the test root, served ``documents`` (the signing certificate at
    ``CERT_URL`` by default)."""
    server = Server({CERT_URL: pki().served} if documents is None else documents)
    made = paypal.Verifier(
        webhook_id=WEBHOOK_ID,
        trust=pki().trust(environment),
        fetch=server,
        cache=cache,
        **options,  # type: ignore[arg-type]
    )
    return Made(made, server)


def forge_crc32(data: bytes, target: int, at: int, width: int = 8) -> bytes:
    """``data`` with ``width`` characters at ``at`` replaced by printable ASCII (0x60-0x7f,
    safe inside a JSON string) so that its CRC32 is ``target``: CRC32 is affine over GF(2), so
    the free bits (five per character) that fix it are found by linear algebra. (What anyone
    holding one genuine delivery can do to PayPal's signed checksum.)"""
    base = bytearray(data)
    base[at : at + width] = b"\x60" * width
    origin = zlib.crc32(bytes(base))
    columns: list[tuple[int, int]] = []
    free = [(i, b) for i in range(width) for b in range(5)]
    for index, (offset, bit) in enumerate(free):
        trial = bytearray(base)
        trial[at + offset] ^= 1 << bit
        columns.append((zlib.crc32(bytes(trial)) ^ origin, 1 << index))
    basis: dict[int, tuple[int, int]] = {}
    for value, mask in columns:
        for high in range(31, -1, -1):
            if not (value >> high) & 1:
                continue
            if high in basis:
                value ^= basis[high][0]
                mask ^= basis[high][1]
            else:
                basis[high] = (value, mask)
                break
    need, chosen = target ^ origin, 0
    for high in range(31, -1, -1):
        if (need >> high) & 1:
            need ^= basis[high][0]
            chosen ^= basis[high][1]
    assert need == 0, "the free bits do not span CRC32's 32 bits"
    forged = bytearray(base)
    for index, (offset, bit) in enumerate(free):
        if (chosen >> index) & 1:
            forged[at + offset] ^= 1 << bit
    assert zlib.crc32(bytes(forged)) == target
    return bytes(forged)
