"""The transport under every connector (issue 13, items 1, 2 and 7): an overall deadline per
call, bounded and decompressed-counted bodies, strict bounded JSON, and connections to the
address that was checked, all against the sandbox's hostile modes over loopback."""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from datetime import datetime, timedelta

import pytest

from connectors import transport
from connectors.clock import JST
from connectors.errors import NetworkError, RequestTimeout, ResponseFormatError
from connectors.kot import KotClient
from connectors.sandbox.server import BOMB_INFLATED_MB, gzip_bomb
from connectors.senselink import SenseLinkClient
from tests.hostile_helpers import measure

MIB = 1024 * 1024


def senselink(sandbox, **kwargs) -> SenseLinkClient:
    kwargs.setdefault("max_retries", 0)
    return SenseLinkClient(
        base_url=sandbox.senselink_url,
        app_key=sandbox.app_key,
        app_secret=sandbox.app_secret,
        allow_private_hosts=True,
        **kwargs,
    )


def kot(sandbox, **kwargs) -> KotClient:
    kwargs.setdefault("max_retries", 0)
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=JST)
    sandbox.clock.set(noon)
    return KotClient(
        base_url=sandbox.kot_url, token=sandbox.kot_token, clock=lambda: noon, **kwargs
    )


# ------------------------------------------------------------------- the overall deadline


@pytest.mark.parametrize("kind", ["slow_body", "slow_headers"])
def test_a_dripping_server_is_cut_off_at_the_overall_deadline(sandbox, kind):
    sandbox.faults.add("senselink", kind, times=None, delay=0.05)
    client = senselink(sandbox, deadline=0.6, timeout=(2.0, 5.0), max_retries=2)
    with measure() as cost, pytest.raises(RequestTimeout) as caught:
        client.server_version()
    # 3 attempts (a GET is retried), each cut at 0.6 s although every read got a byte in time.
    assert cost.seconds < 3 * 0.6 + 1.5
    assert sandbox.request_counts()["GET /api/v3/server/version"] == 3
    assert "0.6秒以内に完了しなかった" in caught.value.message
    assert not caught.value.may_have_landed


def test_a_write_cut_at_the_deadline_is_outcome_unknown_and_never_resent(sandbox):
    employee = sandbox.kot.employees[0]
    sandbox.faults.add("kot", "slow_body", method="POST", times=None, delay=0.05)
    client = kot(sandbox, deadline=0.5, max_retries=3)
    when = datetime(2026, 11, 24, 9, 0, tzinfo=JST)
    with pytest.raises(RequestTimeout) as caught:
        client.register_punch(employee_key=employee["key"], date=when.date(), time=when, code=1)
    assert caught.value.may_have_landed  # stored by the sandbox, answer never completed
    posts = [k for k in sandbox.request_counts() if k.startswith("POST")]
    assert [sandbox.request_counts()[k] for k in posts] == [1]
    assert len(sandbox.kot.punches) == 1


def test_the_deadline_leaves_a_normal_call_alone_and_the_connection_reusable(sandbox):
    client = senselink(sandbox, deadline=5.0)
    for _ in range(3):
        assert client.server_version()
    assert sandbox.request_counts()["GET /api/v3/server/version"] == 3


# ----------------------------------------------------------------------- bounded bodies


def test_a_gzip_bomb_stops_at_the_cap_and_memory_stays_bounded(sandbox):
    bomb = gzip_bomb()  # built before measuring: the sandbox shares this process
    assert len(bomb) < 2 * MIB and BOMB_INFLATED_MB >= 512
    sandbox.faults.add("senselink", "gzip_bomb", times=None)
    client = senselink(sandbox)  # the default cap: 32 MiB
    with measure() as cost, pytest.raises(ResponseFormatError) as caught:
        client.server_version()
    assert "大きすぎるため" in caught.value.message and "32 MB" in caught.value.message
    assert cost.seconds < 5
    assert cost.rss_growth_mib < 160, cost  # the cap plus its copies, never 512 MB


def test_an_oversized_body_without_length_stops_at_the_cap(sandbox):
    sandbox.faults.add("kot", "oversized_body", times=None)
    client = kot(sandbox, max_body_bytes=4 * MIB)
    with measure() as cost, pytest.raises(ResponseFormatError) as caught:
        client.list_employees()
    assert "大きすぎるため" in caught.value.message and "4 MB" in caught.value.message
    assert cost.rss_growth_mib < 64, cost


def test_a_declared_length_over_the_cap_is_refused_before_reading(sandbox):
    client = senselink(sandbox, max_body_bytes=1024)
    sandbox.senselink.add_person(name="x" * 4000, job_number="9999", groups=[1])
    with pytest.raises(ResponseFormatError) as caught:
        client.list_persons()
    assert "大きすぎるため" in caught.value.message


@pytest.mark.parametrize("client_of", [senselink, kot], ids=["senselink", "kot"])
def test_deep_nesting_is_a_format_error_not_a_recursion_error(sandbox, client_of):
    sandbox.faults.add(client_of.__name__, "deep_nesting", times=None)
    client = client_of(sandbox)
    call = client.server_version if client_of is senselink else client.list_employees
    with pytest.raises(ResponseFormatError) as caught:
        call()
    assert caught.value.message.endswith("の応答を読み取れませんでした(入れ子が深すぎます)。")


def test_page_ignored_and_shuffled_ends_at_once_with_a_clear_error(sandbox):
    for number in range(10):
        sandbox.senselink.add_person(name=f"社員 {number}", job_number=f"E{number}", groups=[1])
    sandbox.senselink.page_size_cap = 3
    sandbox.faults.add("senselink", "page_ignored_shuffled", times=None)
    client = senselink(sandbox)
    with measure() as cost, pytest.raises(ResponseFormatError) as caught:
        client.list_persons()
    assert caught.value.code == "senselink_paging"
    assert "同じページを返しました" in caught.value.message
    assert sandbox.request_counts()["GET /api/v1/user/list"] == 2
    assert cost.seconds < 2


def test_server_version_shown_to_people_is_one_short_line(sandbox, monkeypatch):
    from connectors.sandbox import senselink as fake

    real = fake.SenseLinkApp.handle

    def long_version(self, route, request):
        response = real(self, route, request)
        if route.template.endswith("/server/version"):
            response.payload = {"code": 200, "data": {"version": "v1\n" + "x" * 100_000}}
        return response

    monkeypatch.setattr(fake.SenseLinkApp, "handle", long_version)
    version = senselink(sandbox).server_version()
    assert len(version) <= 64 and "\n" not in version


# --------------------------------------------------------------------------- strict JSON


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_limit_is_read_and_one_more_is_refused():
    assert transport.parse_json(nested(transport.JSON_MAX_DEPTH)) is not None
    with pytest.raises(transport.JsonLimitError) as caught:
        transport.parse_json(nested(transport.JSON_MAX_DEPTH + 1))
    assert caught.value.kind == "depth"
    deep_objects = b'{"a":' * 40 + b"1" + b"}" * 40
    with pytest.raises(transport.JsonLimitError):
        transport.parse_json(deep_objects)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (nested(200_000), "depth"),
        ('{"name": "山田"}'.encode("shift_jis"), "encoding"),
        (b'{"a": "\\ud800"}', "encoding"),
        (b'{"a": NaN}', "syntax"),
        (b'{"a": Infinity}', "syntax"),
        (b"[" + b"0," * 600_000 + b"0]", "values"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "syntax"),
        (b"<html>", "syntax"),
    ],
    ids=["deep", "shift-jis", "surrogate", "nan", "infinity", "values", "huge-int", "html"],
)
def test_every_kind_of_bad_json_is_a_json_limit_error(body, kind):
    with pytest.raises(transport.JsonLimitError) as caught:
        transport.parse_json(body)
    assert caught.value.kind == kind


def test_utf8_with_a_bom_and_unicode_text_are_read():
    assert transport.parse_json(b"\xef\xbb\xbf" + '{"氏名": "山田 太郎"}'.encode()) == {
        "氏名": "山田 太郎"
    }


# ------------------------------------------------------------------- our own decoding


def decode(header: str, body: bytes, limit: int = MIB) -> bytes:
    decoder = transport._Decoder(header, limit)
    for start in range(0, len(body), 7):  # small pieces: streams cut anywhere
        decoder.feed(body[start : start + 7])
    return decoder.finish()


def test_gzip_deflate_and_their_variants_decode():
    text = json.dumps({"list": list(range(500))}).encode()
    assert decode("gzip", gzip.compress(text)) == text
    assert decode("x-gzip", gzip.compress(text[:100]) + gzip.compress(text[100:])) == text
    assert decode("deflate", zlib.compress(text)) == text
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode("deflate", raw.compress(text) + raw.flush()) == text
    assert decode("gzip, gzip", gzip.compress(gzip.compress(text))) == text
    assert decode("identity", text) == text
    assert decode("gzip", b"") == b""


@pytest.mark.parametrize(
    ("header", "body", "error"),
    [
        ("gzip", gzip.compress(b"x" * 1000)[:-12], transport.BadContentEncoding),
        ("gzip", b"not gzip at all", transport.BadContentEncoding),
        ("br", b"anything", transport.BadContentEncoding),
        ("gzip", gzip.compress(b" " * (2 * MIB)), transport.BodyTooLarge),
        ("gzip, gzip", gzip.compress(gzip.compress(b" " * (2 * MIB))), transport.BodyTooLarge),
        ("", b" " * (MIB + 1), transport.BodyTooLarge),
    ],
    ids=["truncated", "garbage", "unknown", "bomb", "double-bomb", "plain"],
)
def test_broken_or_oversized_encodings_are_refused(header, body, error):
    with pytest.raises(error):
        decode(header, body)


# ------------------------------------------------------------------ pinned connections


def test_a_pinned_host_connects_to_the_pinned_address_without_resolving(sandbox, monkeypatch):
    resolved: list[str] = []
    real = socket.getaddrinfo

    def recording(host, *args, **kwargs):
        resolved.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    client = kot(sandbox)
    client.base_url = sandbox.kot_url.replace("127.0.0.1", "kot.invalid")
    client.adapter.pin("kot.invalid", ["127.0.0.2", "127.0.0.1"])  # the first one refuses
    assert client.list_employees()
    assert "kot.invalid" not in resolved
    client.adapter.pin("kot.invalid", [])
    client.adapter.poolmanager.clear()  # no kept-alive connection to the pinned address
    with pytest.raises(NetworkError):  # unpinned, the name is resolved (and does not exist)
        client.list_employees()
    assert "kot.invalid" in resolved


# A SenseLink over TLS on loopback with a certificate for senselink.test from a test CA.


def _certificates(tmp_path, host: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(JST)

    def build(subject, issuer, key, signer, *, ca: bool, names=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("test CA", "test CA", ca_key, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(host, "test CA", leaf_key, ca_key, ca=False, names=[host])
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem))
    key_path.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_senselink(tmp_path):
    """Start a TLS SenseLink version endpoint for a certificate host; yields (port, ca, SNI seen)."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    def start(cert_host: str):
        ca_path, cert_path, key_path = _certificates(tmp_path, cert_host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        seen: list[str | None] = []
        context.sni_callback = lambda _sock, name, _ctx: seen.append(name)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"code": 200, "data": {"version": "tls-1"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], ca_path, seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def rebinding_world(monkeypatch, host: str):
    """DNS that answers the URL check with a "public" address (127.0.0.1 stands for one here)
    and every later question with an internal one (127.0.0.2): a rebinding attack."""
    from connectors import netcheck

    answers = {"check": 0}

    def resolve(name):
        answers["check"] += 1
        return ["127.0.0.1"] if answers["check"] == 1 else ["127.0.0.2"]

    real_reason = netcheck._refusal_reason
    monkeypatch.setattr(
        netcheck,
        "_refusal_reason",
        lambda address: "" if str(address) == "127.0.0.1" else real_reason(address),
    )
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def rebinding(name, port, *args, **kwargs):
        if name == host:
            looked_up.append(name)
            return real("127.0.0.2", port, *args, **kwargs)
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    return resolve, looked_up


def test_dns_rebinding_connects_to_the_checked_address_with_sni_and_certificate_on_the_name(
    monkeypatch, tls_senselink
):
    host = "senselink.test"
    port, ca_path, seen_sni = tls_senselink(host)
    resolve, looked_up = rebinding_world(monkeypatch, host)
    client = SenseLinkClient(
        base_url=f"https://{host}:{port}/",
        app_key="key",
        app_secret="secret",
        resolve=resolve,
        max_retries=0,
    )
    client.session.verify = str(ca_path)
    client.session.trust_env = False  # REQUESTS_CA_BUNDLE would win over session.verify
    assert client.server_version() == "tls-1"
    assert seen_sni == [host]  # SNI carries the name, not the address
    assert looked_up == []  # the connection never asked DNS again
    assert client.adapter.pinned(host) == ("127.0.0.1",)


def test_a_certificate_for_another_name_is_refused_even_on_the_checked_address(
    monkeypatch, tls_senselink
):
    host = "senselink.test"
    port, ca_path, _ = tls_senselink("other.test")
    resolve, _ = rebinding_world(monkeypatch, host)
    client = SenseLinkClient(
        base_url=f"https://{host}:{port}/",
        app_key="key",
        app_secret="secret",
        resolve=resolve,
        max_retries=0,
    )
    client.session.verify = str(ca_path)
    client.session.trust_env = False  # REQUESTS_CA_BUNDLE would win over session.verify
    with pytest.raises(NetworkError) as caught:
        client.server_version()
    assert "SSL証明書エラー" in caught.value.message


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("env_vars", "expected"),
    [
        ({"UPSTREAM_CALL_DEADLINE_SECONDS": "61"}, "UPSTREAM_CALL_DEADLINE_SECONDS"),
        ({"UPSTREAM_CALL_DEADLINE_SECONDS": "0"}, "UPSTREAM_CALL_DEADLINE_SECONDS"),
        (
            {"UPSTREAM_CALL_DEADLINE_SECONDS": "100", "SYNC_RUN_LEASE_SECONDS": "400"},
            "UPSTREAM_CALL_DEADLINE_SECONDS",
        ),
        ({"UPSTREAM_MAX_BODY_BYTES": "10"}, "UPSTREAM_MAX_BODY_BYTES"),
    ],
)
def test_a_deadline_beyond_a_fifth_of_the_lease_or_a_tiny_cap_stops_start_up(env_vars, expected):
    from tests.test_settings_startup import GOOD_KEY, start

    result = start(DEBUG="false", SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY=GOOD_KEY, **env_vars)
    assert result.returncode != 0
    assert expected in result.stderr


def test_the_settings_reach_every_client(settings):
    from integrations.services.clients import kot_client, transport_limits

    settings.UPSTREAM_CALL_DEADLINE_SECONDS = 12.5
    settings.UPSTREAM_MAX_BODY_BYTES = 2 * MIB
    assert transport_limits() == {"deadline": 12.5, "max_body_bytes": 2 * MIB}
    assert transport_limits(interactive=True)["deadline"] == 6.0  # the connection test

    class Tenant:
        kot_access_token = "token"

    client = kot_client(Tenant())
    assert (client.deadline, client.adapter.deadline) == (12.5, 12.5)
    assert client.adapter.max_body_bytes == 2 * MIB


# ------------------------------------------------------------------ manage.py sandbox --fault


def test_the_sandbox_command_arms_hostile_faults(sandbox):
    from django.core.management.base import CommandError

    from integrations.management.commands.sandbox import arm_fault

    said = arm_fault(sandbox, "senselink:gzip_bomb@/api/v3/server", delay=0.1)
    assert said == "gzip_bomb on senselink, paths matching '/api/v3/server'"
    assert arm_fault(sandbox, "slow_body", delay=0.2) == "slow_body on both services"
    armed = [(f.service, f.kind, f.path, f.times, f.delay) for f in sandbox.faults.active()]
    assert armed == [
        ("senselink", "gzip_bomb", "/api/v3/server", None, 0.1),
        ("kot", "slow_body", None, None, 0.2),
        ("senselink", "slow_body", None, None, 0.2),
    ]
    with pytest.raises(CommandError):
        arm_fault(sandbox, "lava", delay=1)
    with pytest.raises(CommandError):
        arm_fault(sandbox, "mail:gzip_bomb", delay=1)
    sandbox.faults.clear()
    sandbox.faults.add("senselink", "gzip_bomb", path="/api/v3/server", times=None)
    with pytest.raises(ResponseFormatError):
        senselink(sandbox).server_version()


def test_a_forked_child_gets_its_own_watchdog(sandbox):
    import os

    before = transport._WATCHDOG
    pid = os.fork()
    if pid == 0:  # the child: a call with a deadline works, on a new watchdog
        try:
            ok = (
                transport._WATCHDOG is not before
                and senselink(sandbox, deadline=5).server_version()
            )
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
