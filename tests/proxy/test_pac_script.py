"""PAC scripts run as browsers run them: the standard helpers, the answer's entries in order,
and a broken script refused with words that name it."""

from __future__ import annotations

import pytest

from app.proxy.pac_script import PacAnswer, PacError, PacScript, parse_answer

NAMES = {"render.studio.lan": "10.20.0.5", "api.frame.io": "52.1.2.3"}


def script(body: str) -> PacScript:
    return PacScript(f"function FindProxyForURL(url, host) {{ {body} }}", "test.pac", resolve=NAMES.get)


def answer(body: str, host: str = "api.frame.io", url: str = "") -> PacAnswer:
    return script(body).find(url or f"https://{host}/", host)


@pytest.mark.parametrize(
    ("text", "routes", "skipped"),
    [
        ("DIRECT", (None,), ()),
        ("PROXY p1:3128; PROXY p2:8080; DIRECT", ("http://p1:3128", "http://p2:8080", None), ()),
        ("  proxy p1:3128 ;;direct ", ("http://p1:3128", None), ()),
        ("SOCKS s:1080; PROXY p:3128", ("http://p:3128",), ("SOCKS s:1080",)),
        ("HTTPS secure:443", (), ("HTTPS secure:443",)),
        ("PROXY nohost", (), ("PROXY nohost",)),
        ("PROXY user:pw@evil:80; DIRECT", (None,), ("PROXY user:pw@evil:80",)),
        ("PROXY [::1]:3128", ("http://[::1]:3128",), ()),
        ("", (None,), ()),
        (None, (None,), ()),
    ],
)
def test_an_answer_is_read_entry_by_entry(text: str | None, routes: tuple, skipped: tuple) -> None:
    assert parse_answer(text) == PacAnswer(routes, skipped)


def test_the_standard_helpers_answer_as_in_a_browser() -> None:
    checks = {
        'isPlainHostName("intranet") && !isPlainHostName("a.b")': True,
        'dnsDomainIs("api.frame.io", ".frame.io") && !dnsDomainIs("frame.io.evil", ".frame.io")': True,
        'localHostOrDomainIs("www", "www.studio.lan") && !localHostOrDomainIs("ftp", "www.studio.lan")': True,
        'shExpMatch("https://api.frame.io/", "*.frame.io/*") && shExpMatch("a.b", "a?b")': True,
        '!shExpMatch("axb.c", "a.b.c")': True,  # a dot is a dot, not any character
        'isInNet("render.studio.lan", "10.0.0.0", "255.0.0.0")': True,
        'isInNet("api.frame.io", "10.0.0.0", "255.0.0.0")': False,
        'isInNet("192.168.1.7", "192.168.1.0", "255.255.255.0")': True,
        'isInNet("unknown.host", "0.0.0.0", "0.0.0.0")': False,  # cannot resolve: not in any net
        'isInNetEx("10.20.0.5", "10.20.0.0/16")': True,
        'dnsResolve("render.studio.lan") === "10.20.0.5" && dnsResolve("nope") === null': True,
        'isResolvable("api.frame.io") && !isResolvable("nope")': True,
        "dnsDomainLevels('a.b.c') === 2": True,
        "typeof myIpAddress() === 'string' && myIpAddress().split('.').length === 4": True,
        "weekdayRange('SUN', 'SAT') && timeRange(0, 24) && dateRange(1, 31)": True,
        "dateRange('JAN', 'DEC') && !weekdayRange('XYZ')": True,
    }
    for expression, expected in checks.items():
        got = answer(f"return ({expression}) ? 'PROXY yes:1' : 'DIRECT';")
        assert got.routes == (("http://yes:1",) if expected else (None,)), expression


def test_the_script_decides_host_by_host() -> None:
    pac = script(
        'if (isPlainHostName(host) || dnsDomainIs(host, ".studio.lan")) return "DIRECT";'
        'if (shExpMatch(host, "*.frame.io")) return "PROXY a:3128; PROXY b:3128";'
        'return "PROXY other:8080";'
    )
    assert pac.find("https://render.studio.lan/", "render.studio.lan").routes == (None,)
    assert pac.find("https://api.frame.io/", "api.frame.io").routes == ("http://a:3128", "http://b:3128")
    assert pac.find("https://discord.com/", "discord.com").routes == ("http://other:8080",)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("function FindProxyForURL(url, host) { return 'DIRECT'", "cannot be read"),
        ("var x = 1;", "has no FindProxyForURL function"),
        ("throw new Error('no network today');", "no network today"),
    ],
)
def test_a_broken_script_is_refused_with_its_name(source: str, words: str) -> None:
    with pytest.raises(PacError, match=words) as caught:
        PacScript(source, "http://wpad.studio.lan/wpad.dat")
    assert "http://wpad.studio.lan/wpad.dat" in str(caught.value)


def test_a_script_that_throws_for_one_host_says_which() -> None:
    pac = script('if (host === "bad.host") { throw new Error("boom"); } return "DIRECT";')
    assert pac.find("https://good.host/", "good.host").routes == (None,)
    with pytest.raises(PacError, match="failed for bad.host: Error: boom"):
        pac.find("https://bad.host/", "bad.host")
