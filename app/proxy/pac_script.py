"""A proxy auto-config (PAC) script, evaluated as a browser would: ``FindProxyForURL(url, host)``.

Studios that publish their proxy through a PAC file (set in the system's settings, or found by
WPAD) route some hosts through one proxy, some through another and some direct; a fixed proxy
address cannot say that. The script is JavaScript, run in an embedded interpreter (dukpy) with
the standard helper functions (``shExpMatch``, ``isInNet``, ``dnsResolve``, ``weekdayRange``…)
implemented here. Evaluation may resolve names (``dnsResolve``, ``isInNet``): it blocks, so the
router calls it off the event loop.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dukpy

log = logging.getLogger(__name__)


class PacError(Exception):
    """The script cannot be used: it does not parse, lacks ``FindProxyForURL`` or throws."""


@dataclass(frozen=True)
class PacAnswer:
    """What the script said for one address, in the order to try.

    ``routes``: ``None`` for DIRECT, else an ``http://host:port`` proxy. ``skipped``: the
    entries PostFlow cannot use (SOCKS, HTTPS proxies), said plainly when nothing else is left.
    """

    routes: tuple[str | None, ...]
    skipped: tuple[str, ...] = ()


def parse_answer(text: Any) -> PacAnswer:
    """``"PROXY a:3128; PROXY b:8080; DIRECT"`` → the routes to try. An empty or unreadable
    answer means DIRECT, as browsers read it."""
    if not isinstance(text, str) or not text.strip():
        return PacAnswer((None,))
    routes: list[str | None] = []
    skipped: list[str] = []
    for entry in text.split(";"):
        words = entry.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            routes.append(None)
        elif kind == "PROXY" and len(words) == 2 and _host_port(words[1]):
            routes.append(f"http://{words[1]}")
        else:
            skipped.append(entry.strip())
    if not routes and not skipped:
        routes.append(None)
    return PacAnswer(tuple(dict.fromkeys(routes)), tuple(skipped))


def _host_port(text: str) -> bool:
    """``host:port``, nothing more (no ``user@``, no path: a URL is made of it)."""
    host, sep, port = text.rpartition(":")
    plain = re.fullmatch(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]", host) is not None
    return bool(sep and plain and port.isdigit() and 0 < int(port) < 65536)


class PacScript:
    """One script, compiled once; ``find(url, host)`` may be called from any thread."""

    def __init__(
        self, source: str, origin: str, *, resolve: Callable[[str], str | None] | None = None
    ) -> None:
        self.origin = origin  # where the script came from, for the words of an error
        self._resolve = resolve or _dns_resolve
        self._lock = threading.Lock()  # one interpreter: one evaluation at a time
        self._js = dukpy.JSInterpreter()
        for name, function in self._exports().items():
            self._js.export_function(name, function)
        try:
            self._js.evaljs(HELPERS + "\n" + source)
            defined = self._js.evaljs("typeof FindProxyForURL === 'function'")
        except Exception as exc:  # dukpy's JSRuntimeError: the script's own syntax or top-level error
            raise PacError(f"the proxy script {origin} cannot be read: {_first_line(exc)}") from None
        if not defined:
            raise PacError(f"the proxy script {origin} has no FindProxyForURL function")

    def close(self) -> None:
        """Nothing to end: this one runs in this process (``pac_worker`` runs it apart)."""

    def find(self, url: str, host: str) -> PacAnswer:
        """Blocking: the script may resolve names."""
        with self._lock:
            try:
                text = self._js.evaljs("FindProxyForURL(dukpy.url, dukpy.host)", url=url, host=host)
            except Exception as exc:
                words = _first_line(exc)
                raise PacError(f"the proxy script {self.origin} failed for {host}: {words}") from None
        return parse_answer(text)

    # ---- the helper functions a PAC script may call (Netscape's list, and Microsoft's -Ex) ----
    def _exports(self) -> dict[str, Callable[..., Any]]:
        return {
            "dnsResolve": lambda host: self._resolve(str(host)),
            "dnsResolveEx": lambda host: self._resolve(str(host)) or "",
            "isResolvable": lambda host: self._resolve(str(host)) is not None,
            "isInNet": self._is_in_net,
            "isInNetEx": self._is_in_net_ex,
            "myIpAddress": my_ip_address,
            "alert": lambda *words: log.debug("proxy script says: %s", " ".join(map(str, words))),
        }

    def _is_in_net(self, host: Any, pattern: Any, mask: Any) -> bool:
        address = str(host) if _is_ip(str(host)) else self._resolve(str(host))
        try:
            net = ipaddress.IPv4Network(f"{pattern}/{mask}", strict=False)
            return address is not None and ipaddress.ip_address(address) in net
        except ValueError:
            return False

    def _is_in_net_ex(self, host: Any, prefix: Any) -> bool:
        address = str(host) if _is_ip(str(host)) else self._resolve(str(host))
        try:
            return address is not None and ipaddress.ip_address(address) in ipaddress.ip_network(
                str(prefix), strict=False
            )
        except (ValueError, TypeError):
            return False


def _dns_resolve(host: str) -> str | None:
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]  # type: ignore[return-value]
    except (OSError, IndexError, UnicodeError):
        return None


def my_ip_address() -> str:
    """The address this machine reaches the internet from (no packet is sent: a UDP "connect"
    only picks the route), else loopback, as browsers answer offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# The pure helpers are JavaScript (as in every browser); name lookups call back into Python.
HELPERS = r"""
function _py(name, args) { var r = call_python.apply(null, [name].concat(Array.prototype.slice.call(args)));
  return r === undefined ? null : r; }
function dnsResolve(host) { return _py('dnsResolve', arguments); }
function dnsResolveEx(host) { return _py('dnsResolveEx', arguments); }
function isResolvable(host) { return _py('isResolvable', arguments); }
function isResolvableEx(host) { return _py('isResolvable', arguments); }
function isInNet(host, pattern, mask) { return _py('isInNet', arguments); }
function isInNetEx(host, prefix) { return _py('isInNetEx', arguments); }
function myIpAddress() { return _py('myIpAddress', arguments); }
function myIpAddressEx() { return _py('myIpAddress', arguments); }
function alert() { _py('alert', arguments); }
function isPlainHostName(host) { return String(host).indexOf('.') < 0; }
function dnsDomainIs(host, domain) {
  host = String(host).toLowerCase(); domain = String(domain).toLowerCase();
  return host.length >= domain.length && host.substring(host.length - domain.length) === domain; }
function localHostOrDomainIs(host, hostdom) {
  host = String(host).toLowerCase(); hostdom = String(hostdom).toLowerCase();
  return host === hostdom || (host.indexOf('.') < 0 && hostdom.indexOf(host + '.') === 0); }
function dnsDomainLevels(host) { return String(host).split('.').length - 1; }
function shExpMatch(str, shexp) {
  var re = String(shexp).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp('^' + re + '$').test(String(str)); }
function convert_addr(ipchars) { var b = String(ipchars).split('.');
  return ((b[0] & 0xff) << 24) | ((b[1] & 0xff) << 16) | ((b[2] & 0xff) << 8) | (b[3] & 0xff); }
function _now(args) { var a = Array.prototype.slice.call(args);
  var gmt = a.length && a[a.length - 1] === 'GMT'; if (gmt) { a.pop(); }
  return { args: a, date: new Date(), gmt: gmt }; }
var _DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
var _MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
function weekdayRange() { var n = _now(arguments); var today = n.gmt ? n.date.getUTCDay() : n.date.getDay();
  var first = _DAYS.indexOf(String(n.args[0]).toUpperCase());
  var last = n.args.length > 1 ? _DAYS.indexOf(String(n.args[1]).toUpperCase()) : first;
  if (first < 0 || last < 0) { return false; }
  return first <= last ? (today >= first && today <= last) : (today >= first || today <= last); }
function timeRange() { var n = _now(arguments); var d = n.date; var a = n.args.map(Number);
  var now = n.gmt ? d.getUTCHours() * 3600 + d.getUTCMinutes() * 60 + d.getUTCSeconds()
                  : d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
  var lo, hi;
  if (a.length === 1) { lo = a[0] * 3600; hi = lo + 3599; }
  else if (a.length === 2) { lo = a[0] * 3600; hi = a[1] * 3600 - 1; if (a[1] <= a[0]) { hi += 86400; } }
  else if (a.length === 4) { lo = a[0] * 3600 + a[1] * 60; hi = a[2] * 3600 + a[3] * 60 - 1; }
  else if (a.length === 6) { lo = a[0] * 3600 + a[1] * 60 + a[2]; hi = a[3] * 3600 + a[4] * 60 + a[5]; }
  else { return false; }
  if (hi < lo) { return now >= lo || now <= hi; }
  return (now >= lo && now <= hi) || (hi >= 86400 && now <= hi - 86400); }
function dateRange() { var n = _now(arguments); var d = n.date;
  var today = { d: n.gmt ? d.getUTCDate() : d.getDate(), m: n.gmt ? d.getUTCMonth() : d.getMonth(),
                y: n.gmt ? d.getUTCFullYear() : d.getFullYear() };
  var parts = n.args.map(function (v) { var m = _MONTHS.indexOf(String(v).toUpperCase());
    if (m >= 0) { return { k: 'm', v: m }; }
    v = Number(v); return v > 31 ? { k: 'y', v: v } : { k: 'd', v: v }; });
  var half = parts.length === 1 ? parts : parts.slice(0, parts.length / 2);
  var rest = parts.length === 1 ? parts : parts.slice(parts.length / 2);
  if (parts.length !== 1 && parts.length % 2) { return false; }
  function key(p) { var k = 0; for (var i = 0; i < p.length; i++) {
      k += p[i].k === 'y' ? p[i].v * 10000 : p[i].k === 'm' ? p[i].v * 100 : p[i].v; } return k; }
  function mine(p) { var t = [];
    for (var i = 0; i < p.length; i++) { t.push({ k: p[i].k, v: today[p[i].k] }); } return key(t); }
  var lo = key(half), hi = key(rest), now = mine(half);
  return lo <= hi ? (now >= lo && now <= hi) : (now >= lo || now <= hi); }
"""
