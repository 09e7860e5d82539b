"""Template helpers: sanitised Markdown, scores formatted per competition, UTC/local times."""

from datetime import UTC, datetime

import markdown as markdown_lib
import nh3
from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Organizers write Markdown, but it is still untrusted HTML once rendered: raw HTML passes
# through Markdown untouched, so everything is cleaned against an allow-list afterwards.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
MARKDOWN_EXTENSIONS = ["extra", "sane_lists"]


@register.filter
def markdown(text: str | None) -> SafeString:
    """Render Markdown to HTML that is safe to include in a page."""
    if not text:
        return mark_safe("")
    html = markdown_lib.markdown(text, extensions=MARKDOWN_EXTENSIONS, output_format="html")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # safe: cleaned by nh3 just above


@register.filter
def score(value: float | None, competition) -> str:
    """A score with the competition's precision; empty for a missing score."""
    return competition.format_score(value)


@register.filter
def absolute(value: int | None) -> int | None:
    return None if value is None else abs(value)


@register.simple_tag
def utc_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A <time> element in UTC; static/js/localtime.js adds the reader's local time after it."""
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return format_html(
        '<time datetime="{}" data-local>{} UTC</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime(fmt),
    )
