"""Download the image a user right-clicked (the context menu's Use as Ref Image), treating its URL as hostile.

A web page chose that URL, so without care it could make the daemon fetch from this machine or the LAN (a router's
admin page, a cloud metadata address). DESIGN §13's rules:

- Only public internet addresses, checked after DNS resolution, so `2130706433`, `0x7f.1`, `127.1`, IPv4-mapped IPv6
  and a name that resolves to 10.x are all seen as what they are. The configured InvokeAI server (same address, same
  port) is the one exception: the user right-clicks its gallery images too.
- The connection goes to the address that was checked (the URL is pinned to it; Host and TLS SNI keep the name), so
  a DNS server that answers differently the second time can't redirect it.
- At most 3 redirects, each one checked like the first URL.
- An overall deadline besides the per-read timeout: a server trickling one byte at a time never trips a read
  timeout but can't hold a request for more than `FETCH_DEADLINE_S`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from ipaddress import IPv4Address, IPv6Address

import httpx

from photomapd import errors
from photomapd.errors import RefAddressRefused, RefDownloadTooSlow, RefImageInvalid, RefImageTooBig

log = logging.getLogger(__name__)

FETCH_DEADLINE_S = 20.0  # the whole download, redirects and DNS included; a slow real image still fits
FETCH_TIMEOUT = httpx.Timeout(10.0, connect=3.0)  # per read / per connect, as for InvokeAI itself
MAX_REDIRECTS = 3  # enough for http→https and a CDN hop; more is a loop or a probe
REF_MAX_BYTES = 50 * 1024**2  # larger than any generated image; stops a link to a huge file from filling memory
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the low 32 bits are an IPv4 address

Address = IPv4Address | IPv6Address


def is_refused_address(ip: Address) -> bool:
    """True for anything but a public unicast address: loopback, private, link-local, unspecified, CGNAT, multicast,
    reserved, and IPv6 forms that embed one of those IPv4 addresses."""
    if isinstance(ip, IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_refused_address(embedded)
    return not ip.is_global or ip.is_multicast


async def fetch_image(url: str, *, invokeai_url: str = "", timeout: httpx.Timeout = FETCH_TIMEOUT,
                      verify: ssl.SSLContext | bool = True) -> bytes:
    """The bytes at `url`: http(s) only, public addresses only (and `invokeai_url`'s host and port), image types
    only, size-, redirect- and time-capped. Raises `RefImageInvalid` (or a subclass) with the user's message.

    `verify` is httpx's: the system's CAs by default (tests pass their own).
    """
    deadline_s = FETCH_DEADLINE_S  # read once: the message names the limit that applied
    try:
        async with asyncio.timeout(deadline_s):
            return await _fetch(_parse(url), await _exempt_endpoints(invokeai_url), timeout, verify)
    except TimeoutError as exc:
        raise RefDownloadTooSlow(deadline_s) from exc


async def _fetch(url: httpx.URL, exempt: set[tuple[Address, int]], timeout: httpx.Timeout,
                 verify: ssl.SSLContext | bool) -> bytes:
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = await _addresses(url, exempt)
        # A client per hop: a pooled connection to the same address must not carry a request for another name (its
        # certificate was checked for the first). No proxy from the environment (it would connect on our behalf,
        # past the checks); redirects are followed here, checked, not by httpx.
        async with httpx.AsyncClient(timeout=timeout, verify=verify, trust_env=False, follow_redirects=False) as http:
            response = await _get(http, url, addresses)
            try:
                if not response.has_redirect_location:
                    return await _read_image(response)
                url = _redirect_target(url, response.headers["location"])
            finally:
                await response.aclose()
    raise RefImageInvalid(errors.REF_TOO_MANY_REDIRECTS)


def _parse(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL as exc:
        raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
    if url.scheme not in _DEFAULT_PORTS:
        raise RefImageInvalid(errors.REF_URL_SCHEME)
    if not url.host:
        raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED)
    return url


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
    return _parse(str(target))


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS[url.scheme]


async def _resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order (getaddrinfo runs in a thread: never the loop)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
    found: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])  # drop an IPv6 scope id
        if ip not in found:
            found.append(ip)
    return found


async def _exempt_endpoints(invokeai_url: str) -> set[tuple[Address, int]]:
    """The configured InvokeAI's (address, port) pairs; nothing when it is unset or doesn't resolve."""
    if not invokeai_url.strip():
        return set()
    try:
        base = _parse(invokeai_url)
        return {(ip, _port(base)) for ip in await _resolve(base.host, _port(base))}
    except RefImageInvalid:
        return set()


async def _addresses(url: httpx.URL, exempt: set[tuple[Address, int]]) -> list[Address]:
    """Where `url` may be fetched from: its resolved addresses, all of them allowed, or `RefAddressRefused`.

    One refused address refuses the name: a host answering both a public and a private address is a rebinding
    attempt, or a LAN host anyway.
    """
    port = _port(url)
    addresses = await _resolve(url.host, port)
    for ip in addresses:
        if (ip, port) not in exempt and is_refused_address(ip):
            log.info("ref image: refused %s (resolves to %s)", url.host, ip)
            raise RefAddressRefused()
    return addresses


async def _get(http: httpx.AsyncClient, url: httpx.URL, addresses: list[Address]) -> httpx.Response:
    """GET `url` from the first of `addresses` that accepts a connection; the name stays in Host and in TLS SNI."""
    headers = {"Host": url.netloc.decode("ascii"), "Accept": "image/*"}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    for index, ip in enumerate(addresses):
        pinned = url.copy_with(host=str(ip))
        try:
            return await http.send(http.build_request("GET", pinned, headers=headers, extensions=extensions),
                                   stream=True)
        except httpx.ConnectError as exc:
            if index + 1 < len(addresses):
                continue  # an IPv6 address without a route, say: the next one may work
            raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
    raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED)  # a name with no addresses at all


async def _read_image(response: httpx.Response) -> bytes:
    if response.status_code != 200:
        raise RefImageInvalid(f"{errors.REF_DOWNLOAD_FAILED} (HTTP {response.status_code})")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise RefImageInvalid(errors.REF_NOT_IMAGE)
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > REF_MAX_BYTES:
        raise RefImageTooBig(REF_MAX_BYTES)
    data = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > REF_MAX_BYTES:
                raise RefImageTooBig(REF_MAX_BYTES)
    except httpx.TransportError as exc:
        raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc
    return bytes(data)
