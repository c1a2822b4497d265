"""A certificate chain generated for the tests: root CA -> intermediate CA -> PayPal-named signing leaf.

Shaped like PayPal's real one (a DigiCert TLS server certificate: subjectAltName = the signing
host, serverAuth, a digital-signature key usage; CAs with key-cert-sign and key identifiers), so
cryptography's Web PKI path validation accepts it. Each keyword of :func:`make_chain` breaks one
thing, for the tests that prove the verifier refuses it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SANDBOX_SUBJECT = "messageverificationcerts.sandbox.paypal.com"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _usage(*, signing: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    not_after: datetime | None = None,
    san: str | None = None,
    usage: x509.KeyUsage | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    leaf: bool = False,
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
        .add_extension(usage or _usage(signing=not ca, ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if leaf:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san or subject)]), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
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
        """A ``cert_url`` that serves the chain: the leaf, then the intermediate."""
        return pem(self.leaf, self.intermediate)

    @property
    def leaf_only(self) -> bytes:
        """A ``cert_url`` that serves the leaf alone, the case PayPal's own SDKs are written for
        (paypalrestsdk loads only the first certificate and bundles the issuing intermediate)."""
        return pem(self.leaf)

    def sign(self, message: bytes, key: rsa.RSAPrivateKey | None = None) -> str:
        signature = (key or self.leaf_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


def make_chain(
    subject: str = SANDBOX_SUBJECT,
    *,
    expired: bool = False,
    san: str | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    leaf_usage: x509.KeyUsage | None = None,
    leaf_is_ca: bool = False,
    intermediate_is_ca: bool = True,
    intermediate_expires: timedelta | None = None,
) -> Chain:
    """A fresh chain; ``expired`` (the leaf), ``san``, ``eku``, ``leaf_usage``, ``leaf_is_ca``,
    ``intermediate_is_ca`` and ``intermediate_expires`` (from now) each change one thing."""
    root_key, inter_key, leaf_key = _key(), _key(), _key()
    now = datetime.now(UTC)
    root = _cert("Test Root CA", root_key, None, root_key, ca=True)
    inter_not_after = now + intermediate_expires if intermediate_expires is not None else None
    intermediate = _cert(
        "Test Intermediate CA",
        inter_key,
        root,
        root_key,
        ca=intermediate_is_ca,
        not_after=inter_not_after,
        usage=_usage(signing=True, ca=True),
    )
    not_after = now - timedelta(hours=1) if expired else None
    leaf = _cert(
        subject,
        leaf_key,
        intermediate,
        inter_key,
        ca=leaf_is_ca,
        not_after=not_after,
        san=san,
        usage=leaf_usage or (_usage(signing=True, ca=True) if leaf_is_ca else None),
        eku=eku,
        leaf=True,
    )
    return Chain(root, intermediate, leaf, leaf_key)


def signing_usage(*, digital_signature: bool) -> x509.KeyUsage:
    """A leaf key usage with or without ``digitalSignature`` (key encipherment only, like an old RSA TLS cert)."""
    return _usage(signing=digital_signature, ca=False)


def other_key() -> rsa.RSAPrivateKey:
    return _key()
