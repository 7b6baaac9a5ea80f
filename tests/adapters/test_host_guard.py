"""The SSRF guard: only public addresses, unless COMMQ_WEBHOOK_ALLOWED_HOSTS says otherwise."""

from __future__ import annotations

import socket

import pytest

from commq.adapters.senders import HostGuard, RefusedAddressError
from commq.domain.errors import CommqError

INTERNAL_URLS = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/hook",
    "http://localhost/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[fec0::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:a00:1::]/",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://017700000001/",
    "https://user@127.0.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(RefusedAddressError, match="COMMQ_WEBHOOK_ALLOWED_HOSTS"):
        await HostGuard("").check(url)


async def test_the_refusal_names_the_resolved_address_and_why() -> None:
    with pytest.raises(RefusedAddressError) as refused:
        await HostGuard().check("http://0x7f.1/")

    assert "0x7f.1 (127.0.0.1) is a loopback address" in str(refused.value)
    assert isinstance(refused.value, CommqError)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://8.8.8.8/",
        "file:///etc/passwd",
        "gopher://8.8.8.8/",
        "http:///path",
        "http://0177.0.0.1/",
        "http://a..b/",
        "http://" + "a" * 64 + ".test/",
    ],
)
async def test_urls_that_are_not_plain_http_to_a_host_are_refused(url: str) -> None:
    with pytest.raises(RefusedAddressError):
        await HostGuard("8.8.8.8").check(url)


@pytest.mark.parametrize(
    "url",
    ["http://8.8.8.8/", "https://93.184.216.34:8443/in", "http://[2606:4700:4700::1111]/"],
)
async def test_public_addresses_pass(url: str) -> None:
    await HostGuard().check(url)


async def test_public_ipv4_in_an_ipv6_form_passes() -> None:
    await HostGuard().check("http://[::ffff:8.8.8.8]/")


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000/"),
        ("localhost", "http://localhost/"),
        ("LOCALHOST.", "http://localhost/"),
        ("169.254.169.254", "http://169.254.169.254/"),
        ("10.0.0.0/8", "http://10.20.30.40/"),
        ("192.168.0.0/16, 127.0.0.0/8", "http://2130706433/"),
        ("127.0.0.0/8", "http://[::ffff:127.0.0.1]/"),
        ("::1", "http://[::1]/"),
        ("[::1]", "http://[::1]/"),
        ("fd00::/8", "http://[fd12::1]/"),
    ],
)
async def test_allowed_hosts_addresses_and_ranges_pass(allowed: str, url: str) -> None:
    await HostGuard(allowed).check(url)


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ("10.0.0.0/8", "http://127.0.0.1/"),
        ("127.0.0.2", "http://127.0.0.1/"),
        ("example.internal", "http://localhost/"),
        ("192.168.0.0/24", "http://192.168.1.1/"),
    ],
)
async def test_allowing_one_thing_does_not_allow_another(allowed: str, url: str) -> None:
    with pytest.raises(RefusedAddressError):
        await HostGuard(allowed).check(url)


async def test_an_allowed_hostname_still_yields_the_addresses_to_connect_to() -> None:
    addresses = await HostGuard("localhost").addresses("http://localhost:8080/")

    assert {str(a) for a in addresses} <= {"127.0.0.1", "::1"}
    assert addresses


async def test_a_name_that_does_not_resolve_raises_oserror() -> None:
    with pytest.raises(socket.gaierror):
        await HostGuard().check("http://does-not-exist.invalid/")


@pytest.mark.parametrize("allowed", ["10.0.0.0/33", "300.1.2.3/8", "host/with/slash", "."])
def test_a_malformed_allow_list_is_refused(allowed: str) -> None:
    with pytest.raises(ValueError):
        HostGuard(allowed)
