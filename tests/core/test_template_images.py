"""Alert images in notification templates: every template sees `images` (https src only), the shipped e-mail
shows them in its HTML part (escaped, linked to href, width-limited) and lists them in its text part."""

from __future__ import annotations

from core.templates import TemplateSet, incident_context

IMAGES = [
    {"src": "https://grafana.example.com/render/p99.png?from=1&to=2", "alt": 'p99 "<b>graph</b>"',
     "href": "https://grafana.example.com/d/p99?orgId=1&viewPanel=2"},
    {"src": "http://legacy.example.com/g.png", "alt": "old graph", "href": ""},
    {"src": "img_v2_0123456789abcdef", "alt": "uploaded", "href": ""},
    {"src": "https://img.example.com/mem.png", "alt": "", "href": ""},
]


def _ctx(images=IMAGES):  # type: ignore[no-untyped-def]
    return incident_context({"incident_id": 7, "title": "db-1 down", "incident_severity": "Critical",
                             "images": images}, event_type="i_new", base_url="https://vigil.example.com")


def test_templates_see_the_images_that_may_be_shown() -> None:
    assert _ctx()["images"] == [
        {"src": "https://grafana.example.com/render/p99.png?from=1&to=2", "alt": 'p99 "<b>graph</b>"',
         "href": "https://grafana.example.com/d/p99?orgId=1&viewPanel=2"},
        {"src": "https://img.example.com/mem.png", "alt": "", "href": ""}]
    assert _ctx(None)["images"] == [] and _ctx("https://not-a-list")["images"] == []


def test_the_shipped_email_shows_images_in_html_and_lists_them_in_text() -> None:
    mail = TemplateSet().render("email", "i_new", _ctx())
    assert ('<a href="https://grafana.example.com/d/p99?orgId=1&amp;viewPanel=2"><img '
            'src="https://grafana.example.com/render/p99.png?from=1&amp;to=2" '
            'alt="p99 &#34;&lt;b&gt;graph&lt;/b&gt;&#34;" style="display:block;max-width:100%;height:auto;border:0">'
            '</a>') in mail.html
    assert 'max-width:600px"><img src="https://img.example.com/mem.png" alt="Alert image"' in mail.html
    assert "http://legacy" not in mail.html + mail.text and "img_v2" not in mail.html + mail.text
    assert ("Images:\n- p99 \"<b>graph</b>\": https://grafana.example.com/render/p99.png?from=1&to=2 "
            "(link: https://grafana.example.com/d/p99?orgId=1&viewPanel=2)\n"
            "- Image: https://img.example.com/mem.png\n") in mail.text


def test_no_images_no_trace() -> None:
    mail = TemplateSet().render("email", "i_new", _ctx([]))
    assert "<img" not in mail.html and "Images:" not in mail.text


def test_an_override_can_use_the_images() -> None:
    source = ("{% block subject %}s{% endblock %}{% block text %}{% for i in images %}{{ i.src }} {% endfor %}"
              "{% endblock %}")
    rendered = TemplateSet({("email", "i_new"): source}).render("email", "i_new", _ctx())
    assert not rendered.used_fallback
    assert rendered.text.split() == ["https://grafana.example.com/render/p99.png?from=1&to=2",
                                     "https://img.example.com/mem.png"]
