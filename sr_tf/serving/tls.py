"""TLS and mutual TLS for both front ends, from TF Serving's `--ssl_config_file`.

The file is a text-format `tensorflow.serving.SSLConfig` (tensorflow_serving/config/ssl_config.proto)
whose fields hold PEM *contents*, not paths:

    server_key: "-----BEGIN PRIVATE KEY-----\\n..."
    server_cert: "-----BEGIN CERTIFICATE-----\\n..."
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."   # CA that signs client certificates
    client_verify: true                              # require and verify a client certificate

gRPC is secured as `tensorflow_model_server` does it: one key/certificate pair, `custom_ca` (when
set) as the roots client certificates are checked against, and `client_verify` choosing between
"require and verify a client certificate" and "do not request one". TF Serving has no TLS for REST
(its HTTP server is plaintext only); here REST can use the same configuration when asked
(`rest=True`, `sr-tf serve --rest-api-tls`): it stays off unless requested.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile
from pathlib import Path

from sr_tf.config import ConfigBase


@dataclasses.dataclass(frozen=True)
class TlsConfig(ConfigBase):
    """The fields of TF Serving's `SSLConfig` (PEM text), and whether REST uses them too.

    Attributes:
      server_key / server_cert: the server's private key and certificate (chain), PEM.
      custom_ca: PEM certificates of the CA(s) client certificates must chain to ("" = none).
      client_verify: require a client certificate signed by `custom_ca` (mutual TLS).
      rest: serve REST over HTTPS with the same key, certificate and client check.
    """

    server_key: str = dataclasses.field(repr=False)
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False
    rest: bool = False

    def __post_init__(self):
        if not self.server_key.strip() or not self.server_cert.strip():
            raise ValueError("TlsConfig: `server_key` and `server_cert` must both hold PEM text.")
        if self.client_verify and not self.custom_ca.strip():
            raise ValueError("TlsConfig: `client_verify` needs `custom_ca` (the CA that signs client "
                             "certificates).")


def parse_ssl_config_text(text: str, rest: bool = False) -> TlsConfig:
    """A `TlsConfig` from a text-format `SSLConfig` (what `--ssl_config_file` holds).

    Raises:
      ValueError: the text is no valid `SSLConfig`, or lacks the key or certificate.
    """
    from sr_tf.serving.protos import parse_text

    proto = parse_text("SSLConfig", text)
    return TlsConfig(proto.server_key, proto.server_cert, proto.custom_ca, proto.client_verify, rest)


def parse_ssl_config_file(path: str | os.PathLike, rest: bool = False) -> TlsConfig:
    return parse_ssl_config_text(Path(path).read_text(), rest)


def grpc_server_credentials(config: TlsConfig):
    """grpcio server credentials as TF Serving builds them from its `SSLConfig`."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() if config.custom_ca else None,
        require_client_auth=config.client_verify,
    )


def rest_ssl_context(config: TlsConfig) -> ssl.SSLContext:
    """An HTTPS server context with the same key, certificate and client check (TLS 1.2+)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # the ssl module loads keys from files only: a private folder, removed right after loading
    with tempfile.TemporaryDirectory(prefix="sr-tf-tls-") as tmp:
        key, cert = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config.server_key)
        cert.write_text(config.server_cert)
        ctx.load_cert_chain(str(cert), str(key))
    if config.custom_ca:
        ctx.load_verify_locations(cadata=config.custom_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED if config.client_verify else ssl.CERT_NONE
    return ctx


def grpc_channel_credentials(ca_cert: str | os.PathLike | None = None, cert: str | os.PathLike | None = None,
                             key: str | os.PathLike | None = None):
    """Client credentials: trust `ca_cert` (default: the system roots), present `cert`/`key` when given.

    Raises:
      ValueError: only one of `cert` and `key` is given.
    """
    import grpc

    if (cert is None) != (key is None):
        raise ValueError(f"Give both `cert` and `key` (a client certificate and its key), or neither. "
                         f"Received: cert={cert!r}, key={key!r}")

    def read(path):
        return Path(path).read_bytes() if path is not None else None

    return grpc.ssl_channel_credentials(root_certificates=read(ca_cert), private_key=read(key),
                                        certificate_chain=read(cert))
