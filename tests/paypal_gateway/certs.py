"""A certificate chain generated for the tests: root CA -> intermediate CA -> PayPal-named signing leaf."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SANDBOX_SUBJECT = "messageverificationcerts.sandbox.paypal.com"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    not_after: datetime | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@attrs.frozen
class Chain:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: rsa.RSAPrivateKey

    @property
    def served(self) -> bytes:
        """What PayPal serves at ``cert_url``: the leaf, then the intermediate."""
        return pem(self.leaf, self.intermediate)

    def sign(self, message: bytes, key: rsa.RSAPrivateKey | None = None) -> str:
        signature = (key or self.leaf_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


def make_chain(subject: str = SANDBOX_SUBJECT, *, expired: bool = False) -> Chain:
    root_key, inter_key, leaf_key = _key(), _key(), _key()
    root = _cert("Test Root CA", root_key, None, root_key, ca=True)
    intermediate = _cert("Test Intermediate CA", inter_key, root, root_key, ca=True)
    not_after = datetime.now(UTC) - timedelta(hours=1) if expired else None
    leaf = _cert(subject, leaf_key, intermediate, inter_key, ca=False, not_after=not_after)
    return Chain(root, intermediate, leaf, leaf_key)


def other_key() -> rsa.RSAPrivateKey:
    return _key()
