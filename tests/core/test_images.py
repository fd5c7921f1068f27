"""core.images.shown: which alert images a card, an e-mail or a template may show (https only, safe in markup)."""

from __future__ import annotations

import pytest

from core.images import MAX_SHOWN, shown

IMG = "https://grafana.example.com/render/p99.png"


@pytest.mark.parametrize("images, expected", [
    ([], []),
    ([{"src": IMG, "alt": "p99", "href": "https://grafana.example.com/d/p99"}],
     [{"src": IMG, "alt": "p99", "href": "https://grafana.example.com/d/p99"}]),
    ([{"src": IMG}], [{"src": IMG, "alt": "", "href": ""}]),
    # an http image is mixed content and can be swapped on its way; an image key is no address
    ([{"src": "http://legacy.example.com/g.png", "alt": "old"}, {"src": "img_v2_0123456789abcdef"}], []),
    ([{"src": "HTTPS://X.EXAMPLE/A.PNG"}], [{"src": "HTTPS://X.EXAMPLE/A.PNG", "alt": "", "href": ""}]),
    # characters RFC 3986 never allows unencoded could break out of the markup around the URL
    ([{"src": 'https://x.example/a".png'}, {"src": "https://x.example/<b>"}, {"src": "https://x.example/a b"},
      {"src": "https://x.example/a|b"}, {"src": "https://"}, {"src": "https://x.example/" + "a" * 600}], []),
    # a link that is no web URL is dropped, the image kept; an http link is only a link
    ([{"src": IMG, "href": "javascript:alert(1)"}], [{"src": IMG, "alt": "", "href": ""}]),
    ([{"src": IMG, "href": "http://grafana.example.com/d"}], [{"src": IMG, "alt": "", "href": "http://grafana.example.com/d"}]),
    ([{"src": IMG, "alt": " two\nlines ", "href": 5}], [{"src": IMG, "alt": "two lines", "href": ""}]),
    ([{"src": IMG, "alt": "x" * 300}], [{"src": IMG, "alt": "x" * 128, "href": ""}]),
    # one per src (the first: the newest alert's), not JSON garbage
    ([{"src": IMG, "alt": "new"}, {"src": IMG, "alt": "old"}, "junk", None, {"src": 5}],
     [{"src": IMG, "alt": "new", "href": ""}]),
])
def test_shown(images, expected) -> None:
    assert shown(images) == expected


def test_shown_stops_at_the_limit() -> None:
    many = [{"src": f"https://x.example/{i}.png"} for i in range(10)]
    assert [i["src"] for i in shown(many)] == [f"https://x.example/{i}.png" for i in range(MAX_SHOWN)]
    assert len(shown(many, limit=7)) == 7
