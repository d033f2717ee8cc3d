"""Which network addresses a fetch may connect to: the defence against a source (or a page
`aggregator add` reads) sending the aggregator to a service on its own network (SSRF).

The rule is decided from the URL the user configured, never from what a server answers:

- A source whose URL names a public host may connect only to public addresses, for its
  first request and for every redirect. A redirect to `127.0.0.1`, `10.0.0.5`,
  `169.254.169.254` or to a name that resolves to one is refused before any connection is
  made, with the same words whether anything listens there or not.
- A source whose URL is on this machine or the local network (an IP literal of that kind,
  `localhost`, a one-word name such as a container's `rsshub`, or a name under `.local`,
  `.lan`, `.internal`, `.home.arpa`, …) may also connect to addresses of that same kind:
  a local RSSHub keeps working, and its redirects within the machine too.
- `allow_private` (per source, or for all) widens any source to loopback, private and
  link-local addresses. Cloud metadata services are reached only by a source whose own URL
  names them (`169.254.169.254`, `metadata.google.internal`); `allow_private` does not.

A public-looking name is judged public whatever it resolves to: a name resolving to a
private address needs `allow_private`, which is what keeps a hostile domain from being
"local" for as long as its DNS says so (DNS rebinding). The addresses are checked where the
socket is made (`fetch._Guarded`): resolved once, every one checked, and only those
connected to.

Pure: nothing here resolves or connects. So the two questions a pass asks again and again
(each source's reach at each poll, and each pooled connection's peer before each request) are
memoized: parsed anew each time, they were ~5% of a 304 poll's CPU.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressKind(StrEnum):
    """What an address reaches, as far as a fetch is concerned."""

    PUBLIC = "public"
    LOOPBACK = "loopback"  # this machine: 127/8, ::1, and 0.0.0.0 and :: (which reach it too)
    PRIVATE = "private"  # 10/8, 172.16/12, 192.168/16, CGNAT 100.64/10, ULA fc00::/7
    LINK_LOCAL = "link-local"  # 169.254/16, fe80::/10
    METADATA = "cloud metadata"  # instance metadata services: credentials live there
    RESERVED = "reserved"  # multicast, broadcast, documentation and other non-routed ranges


LOCAL_KINDS = frozenset({AddressKind.LOOPBACK, AddressKind.PRIVATE, AddressKind.LINK_LOCAL})

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, Azure, Google Cloud, Oracle, DigitalOcean, OpenStack, …
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public-range address inside every VM's network)
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
# Names that only a local resolver answers (RFC 6761, 6762, 8375; ICANN's .internal; common
# home-router and corporate suffixes).
LOCAL_SUFFIXES = (
    ".local",
    ".lan",
    ".internal",
    ".home.arpa",
    ".localdomain",
    ".home",
    ".corp",
    ".intranet",
)

_THIS_HOST = (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))
_PRIVATE = tuple(
    ipaddress.ip_network(text)
    for text in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, also Tailscale's addresses
        "fc00::/7",  # unique local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
    )
)
# Benchmarking range that proxies in "fake-ip" mode (Clash, sing-box, Surge) hand out for
# every public name: the proxy, not this address, reaches the site, so it counts as public
# (refusing it would refuse every source for such users).
_FAKE_IP = ipaddress.ip_network("198.18.0.0/15")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@functools.lru_cache(maxsize=1024)
def classify_address(address: str | IPAddress) -> AddressKind:
    """The kind of one IP address; IPv4 carried inside IPv6 (mapped, NAT64, 6to4) counts as
    the IPv4 address it carries."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            return classify_address(carried)
    if ip in METADATA_ADDRESSES:
        return AddressKind.METADATA
    if ip.is_loopback or any(ip in net for net in _THIS_HOST if net.version == ip.version):
        return AddressKind.LOOPBACK
    if ip.is_link_local:
        return AddressKind.LINK_LOCAL
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return AddressKind.PRIVATE
    if ip.version == 4 and ip in _FAKE_IP:
        return AddressKind.PUBLIC
    if ip.is_multicast or ip.is_reserved or not ip.is_global:
        return AddressKind.RESERVED
    return AddressKind.PUBLIC


@dataclass(frozen=True)
class Reach:
    """The kinds of address one fetch may connect to, and how its URL was judged (for the
    words of a refusal)."""

    kinds: frozenset[AddressKind]
    origin: AddressKind = AddressKind.PUBLIC  # the kind of the configured URL's host

    def refusal(self, host: str, address: str) -> str | None:
        """None when `host`, resolved to `address`, may be connected to; else why not, in
        words that do not depend on whether anything listens there."""
        kind = classify_address(address)
        if kind in self.kinds:
            return None
        shown = address.split("%", 1)[0]
        if _same_address(host.strip("[]"), shown):
            what = f"{host.strip('[]')} is a {kind} address"
        else:
            what = f"{host} resolves to a {kind} address ({shown})"
        if kind is AddressKind.METADATA:
            return f"refused: {what}, which only a source whose own URL names it may reach"
        if kind is AddressKind.RESERVED:
            return f"refused: {what}, which no web server uses"
        return (
            f"refused: {what}, which a source on a {self.origin} address may not reach; "
            "set allow_private: true to allow it"
        )


def _same_address(host: str, address: str) -> bool:
    """Whether `host` is `address` written as an IP literal (in any of its spellings)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]) == ipaddress.ip_address(address)
    except ValueError:
        return False


def reach_for(url: str, allow_private: bool = False) -> Reach:
    """What a fetch for the configured `url` may connect to (see the module's docstring)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1" and the like: the fetch itself reports the URL
        host = ""
    return reach_for_host(host, allow_private)


@functools.lru_cache(maxsize=1024)
def reach_for_host(host: str, allow_private: bool = False) -> Reach:
    """`reach_for` of a URL on `host`."""
    origin, home = _home(host.strip("[]").lower().rstrip("."))
    kinds = {AddressKind.PUBLIC, *home}
    if allow_private:
        kinds |= LOCAL_KINDS
    return Reach(frozenset(kinds), origin)


def _home(host: str) -> tuple[AddressKind, frozenset[AddressKind]]:
    """How a configured host is judged, and the kinds its sources may reach besides public
    addresses. Decided from the name as written: no DNS answer can make a public name local."""
    try:
        kind = classify_address(host)
    except ValueError:
        pass
    else:
        return kind, frozenset({kind})
    if host == "localhost" or host.endswith(".localhost"):
        return AddressKind.LOOPBACK, frozenset({AddressKind.LOOPBACK})
    if host in METADATA_HOSTS:
        return AddressKind.METADATA, frozenset({AddressKind.METADATA})
    if host and ("." not in host or host.endswith(LOCAL_SUFFIXES)):
        return AddressKind.PRIVATE, LOCAL_KINDS
    return AddressKind.PUBLIC, frozenset()
