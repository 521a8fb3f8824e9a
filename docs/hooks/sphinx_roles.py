"""MkDocs hook: the docstrings' Sphinx cross-reference roles, shown as plain code.

The Python API pages render docstrings written for Sphinx (``:class:`RunLayout```,
``:func:`~pipeline.tickets.rewind.rewind```); mkdocstrings leaves the role names in the text.
This drops them (and a ``~`` prefix keeps only the last name, as Sphinx shows it), and drops
the ``::`` that introduces a literal block.
"""

from __future__ import annotations

import re

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~)?([^<]*)</code>")
LITERAL_MARKER = re.compile(r"<p>::</p>\s*")


def _code(match: re.Match[str]) -> str:
    name = match.group(2)
    return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not page.file.src_uri.startswith("api/"):
        return html
    return LITERAL_MARKER.sub("", ROLE.sub(_code, html))
