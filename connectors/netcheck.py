"""Validation of tenant-supplied SenseLink URLs, so the portal never calls an internal address."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A label that a browser or libc may read as part of an IPv4 address: decimal, octal or hex.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_FORBIDDEN_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")


class UnsafeUrlError(ValueError):
    """The URL must not be called; ``message`` says why, in Japanese.

    ``unresolvable`` is True when the only problem is that DNS gave no answer (maybe transient).
    """

    def __init__(self, message: str, *, unresolvable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unresolvable = unresolvable

    def __str__(self) -> str:
        return self.message


def default_resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (raises OSError/UnicodeError on failure)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_senselink_url(
    url: str,
    *,
    allow_private_hosts: bool = False,
    resolve: Callable[[str], list[str]] | None = None,
) -> list[str]:
    """Raise UnsafeUrlError unless ``url`` is an https URL whose host is public.

    Returns the addresses that were checked, for the connection to use (so the host is not
    resolved a second time: DNS rebinding); an empty list with ``allow_private_hosts``
    (development, sandbox), where http and private addresses are allowed, but credentials in
    the URL are still refused.
    """
    if not isinstance(url, str) or not url.strip():
        raise UnsafeUrlError("URLを入力してください。")
    if _FORBIDDEN_CHARS.search(url):
        raise UnsafeUrlError("URLに空白や使用できない文字が含まれています。")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UnsafeUrlError("URLの形式が正しくありません。") from None

    allowed_schemes = ("https", "http") if allow_private_hosts else ("https",)
    if parts.scheme.lower() not in allowed_schemes:
        raise UnsafeUrlError("URLは https:// で始まる必要があります。")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("URLにユーザー名やパスワードを含めることはできません。")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrlError("URLにホスト名がありません。")
    if allow_private_hosts:
        return []

    literal = _literal_ip(host)
    if literal is None and _looks_numeric(host):
        raise UnsafeUrlError(
            "IPアドレスの特殊な表記(10進数・8進数・16進数など)は使用できません。"
            "ホスト名で指定してください。"
        )
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        addresses = _resolve(host, resolve or default_resolve)
    for address in addresses:
        reason = _refusal_reason(address)
        if reason:
            raise UnsafeUrlError(
                f"このURLのホスト({host})は{reason}を指しているため使用できません。"
                "インターネット上のSenseLinkのURLを指定してください。"
            )
    return [str(address) for address in addresses]


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _looks_numeric(host: str) -> bool:
    """Whether the host would be read as an IPv4 address in some non-canonical spelling.

    Like the WHATWG URL parser: a host whose last label is numeric is an IPv4 address, and
    no real domain has a numeric top-level label.
    """
    labels = host.split(".")
    return bool(_NUMERIC_LABEL.match(labels[-1]))


def _resolve(host: str, resolve: Callable[[str], list[str]]) -> list[IPAddress]:
    try:
        raw = resolve(host)
    except (OSError, UnicodeError, ValueError):
        raw = []
    addresses = []
    for value in raw:
        try:
            addresses.append(ipaddress.ip_address(str(value).split("%", 1)[0]))
        except ValueError:
            continue
    if not addresses:
        raise UnsafeUrlError(
            f"ホスト名を解決できません({host})。URLのホスト名が正しいかご確認ください。",
            unresolvable=True,
        )
    return addresses


def _refusal_reason(address: IPAddress) -> str:
    """A Japanese description of why ``address`` may not be called, or "" if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _refusal_reason(embedded)
        if address.teredo:
            return "トンネル用アドレス"
    if address.is_loopback:
        return "ループバックアドレス"
    if address.is_link_local:
        return "リンクローカルアドレス"
    if address.is_unspecified:
        return "未指定アドレス"
    if address.is_multicast:
        return "マルチキャストアドレス"
    if address.is_private or address in _SHARED:
        return "プライベートアドレス"
    if address.is_reserved or not address.is_global:
        return "予約済みアドレス"
    return ""


_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
