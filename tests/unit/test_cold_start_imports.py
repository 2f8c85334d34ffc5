"""Cold starts: what importing a handler costs is what its first event needs, nothing more.

Each handler module of the template is imported in a fresh interpreter set up like a Lambda
environment (its code directory first on sys.path, then the layer), and the modules it loaded are
inspected. kafka-python (~100 ms with the botocore its MSK support pulls in), boto3/botocore's
client machinery, PyJWT and the event payload models are imported where they are first used, so
no handler's import may load them. And the MySQL connections say TLS explicitly: off for the local
stack, one verifying context per process when GOODSDROP_MYSQL_TLS_CA names a CA bundle, never
PyMySQL's "preferred" default, which builds a new non-verifying context (~28 ms) per connection.
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
import subprocess
import sys

import pytest

from goodsdrop_local.template import load

FUNCTIONS = load().functions

# Module prefixes no handler's import may load (each is imported lazily where it is used).
DEFERRED = ("kafka", "boto3", "botocore.session", "botocore.client", "jwt", "goodsdrop.event_schemas")

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(getattr(module, sys.argv[2]))
print(json.dumps(sorted(sys.modules)))
"""


def _imported_by(logical_id: str) -> set[str]:
    fn = FUNCTIONS[logical_id]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(map(str, fn.layer_dirs)),
           **{k: v for k, v in os.environ.items() if k.startswith("GOODSDROP_")}}
    done = subprocess.run([sys.executable, "-c", PROBE, str(fn.module_file), fn.handler_name], cwd=fn.code_dir,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def _loaded(modules: set[str], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in modules)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_importing_a_handler_leaves_heavy_libraries_for_their_first_use(logical_id: str) -> None:
    modules = _imported_by(logical_id)
    assert "goodsdrop.settings" in modules  # the probe did import the handler and its layer
    assert [prefix for prefix in DEFERRED if _loaded(modules, prefix)] == []


@pytest.fixture()
def connect_calls(monkeypatch):
    import pymysql

    from goodsdrop import clients

    calls: list[dict] = []

    def fake_connect(**kwargs):
        calls.append(kwargs)
        return object()

    monkeypatch.setattr(pymysql, "connect", fake_connect)
    clients._mysql_tls.cache_clear()
    yield calls
    clients._mysql_tls.cache_clear()


def _settings_with(monkeypatch, **changes) -> None:
    import dataclasses

    from goodsdrop import clients

    monkeypatch.setattr(clients, "settings", dataclasses.replace(clients.settings, **changes))


def test_mysql_without_a_ca_bundle_connects_without_tls(monkeypatch, connect_calls) -> None:
    from goodsdrop import clients

    _settings_with(monkeypatch, mysql_tls_ca="")
    clients._mysql_connect()
    assert connect_calls[0]["ssl_disabled"] is True
    assert "ssl" not in connect_calls[0]


def _self_signed_ca(path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GoodsDrop test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_mysql_with_a_ca_bundle_requires_verified_tls_from_one_context(monkeypatch, connect_calls, tmp_path) -> None:
    from goodsdrop import clients

    bundle = tmp_path / "ca.pem"
    _self_signed_ca(bundle)
    _settings_with(monkeypatch, mysql_tls_ca=str(bundle))
    clients._mysql_connect()
    clients._mysql_connect()
    first, second = connect_calls[0]["ssl"], connect_calls[1]["ssl"]
    assert isinstance(first, ssl.SSLContext) and first is second  # built once per process, not per connection
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert first.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in first.get_ca_certs()] == [((("commonName", "GoodsDrop test CA"),),)]
    assert "ssl_disabled" not in connect_calls[0]
