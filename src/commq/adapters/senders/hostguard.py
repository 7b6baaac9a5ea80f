"""The SSRF guard: webhooks may only reach public addresses, unless an operator allows more."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from commq.domain.errors import CommqError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits, and the
# ipaddress module of Python 3.11 calls that prefix global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedAddressError(CommqError):
    """The webhook URL points somewhere commq may not send to."""


class HostGuard:
    """Decides which webhook URLs may be called, from ``COMMQ_WEBHOOK_ALLOWED_HOSTS``.

    ``allowed`` is a comma-separated list of hostnames, IP addresses and CIDR
    ranges (empty: only public addresses). The check runs on the addresses the
    host resolves to, so decimal, hex and IPv4-mapped spellings of a private
    address, and names that resolve to one, are all refused.
    """

    def __init__(self, allowed: str = "") -> None:
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in (part.strip() for part in allowed.split(",")):
            if entry:
                self._allow(entry)

    def _allow(self, entry: str) -> None:
        bare = entry.removeprefix("[").removesuffix("]")
        try:
            self._networks.append(ipaddress.ip_network(bare, strict=False))
        except ValueError:
            if "/" in entry or not entry.strip("."):
                raise ValueError(f"not a hostname, IP address or CIDR range: {entry!r}") from None
            self._hosts.add(_normal_host(entry))

    async def check(self, url: str) -> None:
        """Return when ``url`` may be called; raise RefusedAddressError saying why not.

        Raises OSError (socket.gaierror) when the host does not resolve.
        """
        await self.addresses(url)

    async def addresses(self, url: str) -> list[IPAddress]:
        """The checked addresses ``url``'s host resolves to, in resolver order."""
        parsed = parse_target(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return await self.connectable(host, port)

    async def connectable(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` that may be connected to: all of them, or a refusal.

        The webhook transport calls this when it opens a connection and then
        connects to these very addresses (never resolving again), so a DNS
        answer that changes between a check and the connect cannot slip past.
        Raises RefusedAddressError, or OSError when the host does not resolve.
        """
        resolved = await self.resolve(host, port)
        if _normal_host(host) not in self._hosts:
            for address in resolved:
                self._check_address(host, address)
        return resolved

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The host's addresses in resolver order: the DNS lookup, apart so tests can fake it."""
        return await _resolve(host, port)

    def _check_address(self, host: str, address: IPAddress) -> None:
        if any(address in network for network in self._networks):
            return
        embedded = _embedded_ipv4(address)
        if embedded is not None and any(embedded in network for network in self._networks):
            return
        # An IPv6 form that carries an IPv4 address reaches that IPv4 address.
        reason = _why_not_public(embedded if embedded is not None else address)
        if reason:
            shown = host if host == str(address) else f"{host} ({address})"
            raise RefusedAddressError(
                f"webhook host {shown} is {reason}; "
                "add it to COMMQ_WEBHOOK_ALLOWED_HOSTS to allow it"
            )


def parse_target(url: str) -> httpx.URL:
    """A webhook URL parsed as the HTTP client will (so both agree on the host), or a refusal.

    Only http and https URLs with a host pass; anything else raises RefusedAddressError.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise RefusedAddressError(f"webhook URL is not valid: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise RefusedAddressError("webhook URL must be http or https")
    if not parsed.raw_host:
        raise RefusedAddressError("webhook URL has no host")
    return parsed


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        # The resolver's IDNA step refuses empty or over-long labels ("a..b", 64 letters).
        raise RefusedAddressError(f"webhook host {host!r} is not a valid name") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    return found


def _normal_host(host: str) -> str:
    return host.lower().rstrip(".").removeprefix("[").removesuffix("]")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _why_not_public(address: IPAddress) -> str | None:
    """None for an address on the public internet, else what kind it is."""
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (_is_site_local(address), "a site-local address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _is_site_local(address: IPAddress) -> bool:
    # fec0::/10 is deprecated (RFC 3879) but still routed inside some networks.
    return isinstance(address, ipaddress.IPv6Address) and address.is_site_local
