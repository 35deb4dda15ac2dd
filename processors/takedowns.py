"""Which platform must take a reported scam page down: derived from the URL's host alone.

A takedown goes to whoever hosts the page. The host is matched against the table
below by registrable-domain suffix: ``m.facebook.com`` is Meta's, ``notfacebook.com``
and ``facebook.com.example.io`` are not. Anything that does not parse, has no host,
is an IP literal or is not in the table goes to the default addressee (the war room
routes those by hand).

Hosts are compared lower-cased without a trailing dot. Internationalised names are
left as written (no punycode conversion): a lookalike in another script is not the
platform, and must not be routed to it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Registrable domain (or hosting suffix) -> the platform's addressee name.
PLATFORM_DOMAINS: dict[str, str] = {
    # Meta
    "facebook.com": "meta",
    "fb.com": "meta",
    "fb.me": "meta",
    "fb.watch": "meta",
    "m.me": "meta",
    "messenger.com": "meta",
    "instagram.com": "meta",
    "instagr.am": "meta",
    "threads.net": "meta",
    "whatsapp.com": "meta",
    "wa.me": "meta",
    # LINE
    "line.me": "line",
    "lin.ee": "line",
    "line.naver.jp": "line",
    # TikTok
    "tiktok.com": "tiktok",
    # Telegram
    "t.me": "telegram",
    "telegram.me": "telegram",
    "telegram.org": "telegram",
    "telegram.dog": "telegram",
    "telegra.ph": "telegram",
    # Google: only the parts of google.com that host user content, plus Google's own hosting suffixes
    "youtube.com": "google",
    "youtu.be": "google",
    "sites.google.com": "google",
    "docs.google.com": "google",
    "drive.google.com": "google",
    "forms.google.com": "google",
    "forms.gle": "google",
    "blogspot.com": "google",
    "web.app": "google",
    "firebaseapp.com": "google",
    # X
    "x.com": "x",
    "twitter.com": "x",
    "t.co": "x",
    # Marketplaces
    "shopee.co.th": "shopee",
    "shp.ee": "shopee",
    "lazada.co.th": "lazada",
}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def platform_for_url(url: str, default_addressee: str) -> str:
    """The platform hosting ``url``, or ``default_addressee`` if the host is unknown or unparseable."""
    host = url_host(url)
    if host is None:
        return default_addressee
    labels = host.split(".")
    for start in range(len(labels)):  # longest suffix first: sites.google.com before google.com
        platform = PLATFORM_DOMAINS.get(".".join(labels[start:]))
        if platform is not None:
            return platform
    return default_addressee


def url_host(url: str) -> str | None:
    """The host of a URL, lower-cased without a trailing dot; tolerates a missing scheme, ports and userinfo."""
    text = url.strip().replace("\\", "/")  # browsers read a backslash in a web URL as a slash
    if not _SCHEME.match(text) and not text.startswith("//"):
        text = "//" + text  # "fb.me/x" or "fb.me:443/x" would otherwise parse as a scheme or a path
    try:
        host = urlsplit(text).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if not host or ":" in host or host.replace(".", "").isdigit():  # IP literals have no platform
        return None
    return host
