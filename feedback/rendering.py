"""Markdown for project guidelines, rendered so that nothing in the source can run in a page.

Guidelines are written by project admins but shown to every annotator, so they are treated as
untrusted: raw HTML in the source is shown as text (never passed through), and links or images
may only point at http(s), mailto or relative addresses.
"""
import re

import markdown
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

SAFE_SCHEMES = {"http", "https", "mailto"}
# Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")


def is_safe_url(url: str) -> bool:
    """True for relative addresses and for the schemes in SAFE_SCHEMES."""
    compact = _IGNORED_IN_SCHEME.sub("", url).lower()
    match = _SCHEME.match(compact)
    return match is None or match.group(1) in SAFE_SCHEMES


class _DropUnsafeUrls(Treeprocessor):
    def run(self, root):
        for element in root.iter():
            for attribute in ("href", "src"):
                url = element.get(attribute)
                if url is not None and not is_safe_url(url):
                    del element.attrib[attribute]
        return None


class _EscapeRawHtml(Extension):
    """Turns off Python-Markdown's raw-HTML pass-through; such input is then escaped as text."""

    def extendMarkdown(self, md):
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # After "inline" (priority 20), which is where links and images are created.
        md.treeprocessors.register(_DropUnsafeUrls(md), "drop_unsafe_urls", 15)


def render_markdown(source: str) -> SafeString:
    """Markdown to HTML that is safe to insert into a page as is."""
    html = markdown.markdown(source or "", extensions=[_EscapeRawHtml(), "sane_lists"], output_format="html")
    return mark_safe(html)  # safe by construction: raw HTML escaped, URLs filtered above
