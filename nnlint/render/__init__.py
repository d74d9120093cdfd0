"""Renderers: one module per output format behind one interface, `render(report, format) -> str`.

Renderers only format; everything they print was computed by the engine. `formats` holds the
interface, `common` what the format modules share; this package only re-exports them.
"""

from __future__ import annotations

from nnlint.render.common import display_path, plain_json
from nnlint.render.formats import OutputFormat, render, render_statistics

__all__ = ["OutputFormat", "display_path", "plain_json", "render", "render_statistics"]
