"""TLS and mutual TLS from TF Serving's `--ssl_config_file`: gRPC (as tensorflow_model_server) and
opt-in HTTPS for REST. Certificates are made here with `cryptography` (a CA, the server's, a
client's, and a client certificate from another CA)."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import numpy as np
import pytest
import requests
from serving_helpers import image_bytes, random_pixels

from sr_tf.serving.clients import GrpcClient, RestClient, ServingClientError


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key, issuer=None, issuer_key=None, ca=False, server=False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer is not None else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
    return cert, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """PEM files: ca, server, client (signed by ca) and rogue (a client cert of another CA)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = _key(), _key()
    ca, ca_pem = _cert("sr-tf test CA", ca_key, ca=True)
    rogue_ca, _ = _cert("another CA", rogue_ca_key, ca=True)
    files = {"ca.pem": ca_pem}
    for who, issuer, issuer_key, server in (("server", ca, ca_key, True), ("client", ca, ca_key, False),
                                            ("rogue", rogue_ca, rogue_ca_key, False)):
        key = _key()
        files[f"{who}.key"] = _pem_key(key)
        files[f"{who}.pem"] = _cert(who, key, issuer, issuer_key, server=server)[1]
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def _ssl_config_text(pki, client_verify: bool) -> str:
    import json

    def field(name, file):  # a proto text string: JSON's escapes are valid there
        return f"{name}: {json.dumps((pki / file).read_text())}\n"

    return (field("server_key", "server.key") + field("server_cert", "server.pem") + field("custom_ca", "ca.pem")
            + f"client_verify: {'true' if client_verify else 'false'}\n")


@pytest.fixture(scope="module")
def tls_server(exported, pki, tmp_path_factory):
    """A server whose gRPC and REST ports both require a client certificate of the test CA,
    configured through `sr-tf serve`'s own flag parsing of an --ssl_config_file."""
    from sr_tf.cli import build_parser
    from sr_tf.cli.serve import _server_config
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer

    path = tmp_path_factory.mktemp("tlsconf") / "ssl.config"
    path.write_text(_ssl_config_text(pki, client_verify=True))
    argv = ["serve", f"--ssl_config_file={path}", "--rest-api-tls", "--port=1", "--rest_api_port=1",
            "--file_system_poll_wait_seconds=0", "--no-warmup"]
    config = _server_config(build_parser(argv).parse_args(argv), None)
    assert config.tls.client_verify and config.tls.rest and "BEGIN CERTIFICATE" in config.tls.custom_ca
    import dataclasses

    config = dataclasses.replace(config, rest_port=0, grpc_port=0, grace_seconds=2)
    srv = ModelServer([ModelConfig("tiny", str(exported.parent))], config).start()
    yield srv
    srv.stop()


def _grpc_client(srv, pki, **files):
    return GrpcClient(f"localhost:{srv.grpc_port}", "tiny", timeout=10, tls=True,
                      **{k: str(pki / v) for k, v in files.items()})


def _expected(srv, x):
    servable = srv.manager.resolve("tiny")
    return servable.run(servable.signature("serving_default"), {"images": x})["upscaled"]


def test_good_client_certificate_gets_bit_identical_predictions(tls_server, pki):
    x = random_pixels(3)
    expected = _expected(tls_server, x)
    client = _grpc_client(tls_server, pki, ca_cert="ca.pem", cert="client.pem", key="client.key")
    try:
        np.testing.assert_array_equal(client.predict(x), expected)
    finally:
        client.close()
    rest = RestClient(f"https://localhost:{tls_server.rest_port}", "tiny", timeout=10, ca_cert=str(pki / "ca.pem"),
                      cert=str(pki / "client.pem"), key=str(pki / "client.key"))
    try:
        np.testing.assert_array_equal(rest.predict(x), expected)
    finally:
        rest.close()
    assert "(TLS)" in " ".join(tls_server.urls()) and f"https://127.0.0.1:{tls_server.rest_port}" in " ".join(tls_server.urls())


@pytest.mark.parametrize("files", [{}, {"cert": "rogue.pem", "key": "rogue.key"}], ids=["no-cert", "other-ca"])
def test_clients_without_a_certificate_of_the_ca_are_refused(tls_server, pki, files):
    client = _grpc_client(tls_server, pki, ca_cert="ca.pem", **files)
    try:
        with pytest.raises(ServingClientError) as err:
            client.predict(random_pixels(1))
        assert err.value.status == "UNAVAILABLE"
    finally:
        client.close()
    cert = (str(pki / files["cert"]), str(pki / files["key"])) if files else None
    # TLS 1.3 refuses the certificate after the handshake: an SSL error or a closed connection
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"https://localhost:{tls_server.rest_port}/v1/models/tiny", verify=str(pki / "ca.pem"),
                     cert=cert, timeout=10)


def test_plaintext_clients_are_refused_on_tls_ports(tls_server):
    with grpc.insecure_channel(f"127.0.0.1:{tls_server.grpc_port}") as channel:
        with pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=2)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.rest_port}/v1/models/tiny", timeout=10)


def test_server_only_tls_and_the_predict_cli(exported, pki, tmp_path, capsys):
    """client_verify false: any TLS client is served; `sr-tf predict --ca-cert` talks to it and a
    plaintext REST server stays plaintext (REST TLS is opt-in)."""
    from sr_tf.cli import main
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig
    from sr_tf.serving.tls import parse_ssl_config_text

    tls = parse_ssl_config_text(_ssl_config_text(pki, client_verify=False))
    assert not tls.rest and "PRIVATE KEY" not in repr(tls)  # logs never show the key
    srv = ModelServer([ModelConfig("tiny", str(exported.parent))],
                      ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, warmup=False, tls=tls,
                                   grace_seconds=2)).start()
    try:
        assert requests.get(f"http://127.0.0.1:{srv.rest_port}/v1/models/tiny", timeout=10).status_code == 200
        src = tmp_path / "in.png"
        src.write_bytes(image_bytes(np.zeros((4, 4, 3), np.uint8)))
        server = f"grpc://localhost:{srv.grpc_port}"
        assert main(["predict", str(src), str(tmp_path / "out.png"), "--server", server, "--model", "tiny",
                     "--ca-cert", str(pki / "ca.pem")]) == 0
        assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")
        assert main(["predict", str(src), str(tmp_path / "x.png"), "--server", server, "--model", "tiny",
                     "--cert", str(pki / "client.pem")]) == 2  # --cert without --key
    finally:
        srv.stop()
    capsys.readouterr()
