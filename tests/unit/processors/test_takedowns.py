"""Takedown routing (processors/takedowns.py): the platform hosting a reported page, from its host."""

from __future__ import annotations

import pytest

from processors.takedowns import PLATFORM_DOMAINS, platform_for_url, url_host

DEFAULT = "war-room"


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.facebook.com/groups/invest-th", "meta"),
        ("https://m.facebook.com/profile.php?id=1", "meta"),
        ("fb.me/abc", "meta"),
        ("https://www.instagram.com/p/xyz/", "meta"),
        ("https://www.threads.net/@scam", "meta"),
        ("https://wa.me/66812345678", "meta"),
        ("https://chat.whatsapp.com/AbCd", "meta"),
        ("https://line.me/ti/p/~scammer", "line"),
        ("http://line.naver.jp/R/msg", "line"),
        ("https://vt.tiktok.com/ZS8abc/", "tiktok"),
        ("t.me/joinchat/abc", "telegram"),
        ("https://telegram.me/scam", "telegram"),
        ("https://sites.google.com/view/fake-bank", "google"),
        ("https://docs.google.com/forms/d/e/1/viewform", "google"),
        ("https://forms.gle/abc", "google"),
        ("https://youtu.be/dQw4w9WgXcQ", "google"),
        ("https://www.youtube.com/watch?v=1", "google"),
        ("https://x.com/scam/status/1", "x"),
        ("https://mobile.twitter.com/scam", "x"),
        ("https://shopee.co.th/product/1/2", "shopee"),
        ("https://www.lazada.co.th/products/i1.html", "lazada"),
    ],
)
def test_known_hosts_go_to_their_platform(url: str, platform: str) -> None:
    assert platform_for_url(url, DEFAULT) == platform


@pytest.mark.parametrize(
    "url",
    [
        "HTTPS://WWW.FACEBOOK.COM/Scam",  # uppercase
        "https://www.facebook.com./scam",  # trailing dot
        "https://www.facebook.com:443/scam",  # port
        "www.facebook.com:8443/scam",  # port without a scheme
        "https://user:secret@www.facebook.com/scam",  # userinfo
        "//www.facebook.com/scam",  # scheme-relative
        "  https://facebook.com/scam \n",  # whitespace around
    ],
)
def test_host_is_found_through_url_noise(url: str) -> None:
    assert platform_for_url(url, DEFAULT) == "meta"


@pytest.mark.parametrize(
    "url",
    [
        "https://notfacebook.com/x",  # a suffix of the string, not of the domain
        "https://facebook.com.evil.example/x",  # the platform's name as a subdomain
        "https://www.google.com/search?q=x",  # google.com itself hosts no user pages
        "https://scam-bank.example/login",
        "https://ไทย.example/",  # IDN, left as written
        "https://203.0.113.9/login",  # IP literal
        "https://[2001:db8::1]/login",
        "https://[2001:db8::1/login",  # unbalanced bracket
        "mailto:scam@example.com",
        "",
        "   ",
        "https://",
    ],
)
def test_unknown_or_unparseable_hosts_go_to_the_default(url: str) -> None:
    assert platform_for_url(url, DEFAULT) == DEFAULT


def test_a_backslash_is_read_as_browsers_read_it() -> None:
    # A browser opens evil.example here; the userinfo trick must not route the takedown to Meta.
    assert platform_for_url("https://evil.example\\@facebook.com/", DEFAULT) == DEFAULT


def test_url_host_normalises() -> None:
    assert url_host("HTTP://Admin@Sub.Example.COM.:8080/path") == "sub.example.com"
    assert url_host("example.com") == "example.com"
    assert url_host("http://") is None


def test_table_entries_are_lower_case_hosts() -> None:
    for domain, platform in PLATFORM_DOMAINS.items():
        assert domain == domain.lower().strip(".")
        assert url_host(f"https://{domain}/") == domain
        assert platform_for_url(f"https://sub.{domain}/", DEFAULT) == platform
