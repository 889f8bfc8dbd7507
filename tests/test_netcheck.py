"""SenseLink URL validation: every refused form, with DNS answers injected (no network)."""

from __future__ import annotations

import socket

import pytest

from connectors.netcheck import UnsafeUrlError, check_senselink_url

PUBLIC = "52.68.10.20"


def resolver(*addresses: str):
    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls
    return resolve


def failing_resolve(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    "url",
    [
        "https://link.japancv.co.jp/",
        "https://link.japancv.co.jp",
        "https://link.japancv.co.jp/tenant/path/",
        "https://link.japancv.co.jp:8443/",
        "https://52.68.10.20/",
        "https://[2001:4860:4860::8888]/",
    ],
)
def test_public_https_urls_are_accepted(url):
    check_senselink_url(url, resolve=resolver(PUBLIC, "2001:4860:4860::8888"))


@pytest.mark.parametrize(
    "url",
    [
        "",
        "link.japancv.co.jp",
        "http://link.japancv.co.jp/",
        "ftp://link.japancv.co.jp/",
        "file:///etc/passwd",
        "https:///path-only",
        "https://user:pass@link.japancv.co.jp/",
        "https://user@link.japancv.co.jp/",
        "https://link.japancv.co.jp\\@127.0.0.1/",
        "https://link.japancv.co.jp /",
        "https://link.japancv.co.jp:99999/",
        # Loopback, private, link-local, shared, unspecified, multicast, reserved literals.
        "https://127.0.0.1/",
        "https://127.1.2.3/",
        "https://10.0.0.5/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[fe80::1]/",
        "https://[ff02::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a00:1]/",
        "https://[2002:7f00:1::]/",
        # Non-canonical IPv4 spellings.
        "https://2130706433/",
        "https://0177.0.0.1/",
        "https://0x7f.1/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://017700000001/",
        "https://127.0.0.1./",
        "https://1.2.3.4.5/",
        "https://example.0x10/",
    ],
)
def test_refused_urls(url):
    resolve = resolver(PUBLIC)
    with pytest.raises(UnsafeUrlError) as info:
        check_senselink_url(url, resolve=resolve)
    assert info.value.message
    assert str(info.value) == info.value.message


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["100.100.100.200"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1%eth0"],
        ["::ffff:192.168.0.1"],
        [PUBLIC, "192.168.0.10"],  # one private answer among public ones is enough to refuse
    ],
)
def test_hosts_resolving_to_non_public_addresses_are_refused(addresses):
    with pytest.raises(UnsafeUrlError) as info:
        check_senselink_url("https://link.example.jp/", resolve=resolver(*addresses))
    assert "使用できません" in info.value.message


def test_unresolvable_host_is_refused_with_a_clear_message():
    with pytest.raises(UnsafeUrlError) as info:
        check_senselink_url("https://no-such-host.example.jp/", resolve=failing_resolve)
    assert "ホスト名を解決できません" in info.value.message


def test_empty_resolution_is_refused():
    with pytest.raises(UnsafeUrlError, match="ホスト名を解決できません"):
        check_senselink_url("https://link.example.jp/", resolve=resolver())


def test_literal_ip_is_not_resolved():
    resolve = resolver("10.0.0.1")
    check_senselink_url("https://52.68.10.20/", resolve=resolve)
    assert resolve.calls == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "https://localhost/", "http://10.0.0.5/", "http://sandbox:9000/"],
)
def test_allow_private_hosts_skips_address_checks(url):
    resolve = resolver("127.0.0.1")
    check_senselink_url(url, allow_private_hosts=True, resolve=resolve)
    assert resolve.calls == []


@pytest.mark.parametrize(
    "url", ["http://user:pw@127.0.0.1:8000/", "ftp://127.0.0.1/", "https:///nohost"]
)
def test_allow_private_hosts_still_refuses_credentials_and_odd_schemes(url):
    with pytest.raises(UnsafeUrlError):
        check_senselink_url(url, allow_private_hosts=True, resolve=resolver("127.0.0.1"))
