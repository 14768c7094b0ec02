"""Signing SNS messages as SNS does, for the tests of ``SNSEndpoint`` (a support module: the
key and the signature are made independently of the code under test)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


@dataclasses.dataclass(frozen=True)
class Signer:
    """A key and its self-signed certificate, served at ``cert_url`` in the tests."""

    key: rsa.RSAPrivateKey
    pem: bytes
    cert_url: str

    def sign(self, message: Mapping[str, Any], version: str = "1") -> dict[str, Any]:
        """Sign ``message`` as SNS does (SignatureVersion 1: SHA1, 2: SHA256)."""
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        if signed["Type"] == "Notification":
            keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            keys.append("Type")
        text = "".join(f"{k}\n{signed[k]}\n" for k in keys if k in signed).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text, padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


def make_signer(cert_url: str) -> Signer:
    """A new key and self-signed certificate (a key costs about 50 ms: share it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return Signer(key, cert.public_bytes(serialization.Encoding.PEM), cert_url)
