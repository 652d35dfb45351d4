"""Figures as step outputs: a matplotlib figure as a PNG image, a Plotly figure as its JSON.

matplotlib and Plotly are imported only when a value is one of their figures (each is checked only when
its library was imported already), so neither is needed unless a step makes such a figure.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from evergreen.errors import MaterializerError


class PngImage(bytes):
    """A PNG image's bytes, as a matplotlib figure loads back from the artifact store.

    It is ``bytes`` (write it with ``Path("loss.png").write_bytes(image)``, read it with
    ``matplotlib.pyplot.imread(io.BytesIO(image))``) that Jupyter shows as an image.
    """

    def _repr_png_(self) -> bytes:
        return bytes(self)

    def save(self, path: str | Path) -> Path:
        """Write the image to ``path`` and return it."""
        target = Path(path)
        target.write_bytes(self)
        return target


class MatplotlibPngMaterializer:
    """``matplotlib.figure.Figure`` -> PNG (at the figure's own dpi); it loads back as a :class:`PngImage`."""

    name = "matplotlib.png"

    def can_save(self, value: object) -> bool:
        """True for matplotlib figures (only if matplotlib was imported)."""
        if "matplotlib.figure" not in sys.modules:
            return False
        from matplotlib.figure import Figure

        return isinstance(value, Figure)

    def to_bytes(self, value: object) -> bytes:
        """The PNG, without the library-version metadata, so the same figure gives the same bytes."""
        buffer = io.BytesIO()
        try:
            value.savefig(buffer, format="png", metadata={"Software": None})  # type: ignore[attr-defined]
        except (ValueError, RuntimeError, TypeError) as e:
            raise MaterializerError(f"matplotlib could not draw the figure as PNG: {e}") from e
        return buffer.getvalue()

    def from_bytes(self, data: bytes) -> object:
        """The PNG bytes as a :class:`PngImage`."""
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise MaterializerError("the bytes are not a PNG image (no PNG signature)")
        return PngImage(data)


class PlotlyJsonMaterializer:
    """``plotly.graph_objects.Figure`` <-> its JSON (data, layout and frames); it loads back as a Figure."""

    name = "plotly.json"

    def can_save(self, value: object) -> bool:
        """True for Plotly figures (only if Plotly was imported)."""
        if "plotly.basedatatypes" not in sys.modules:
            return False
        from plotly.basedatatypes import BaseFigure

        return isinstance(value, BaseFigure)

    def to_bytes(self, value: object) -> bytes:
        """The figure's JSON, as ``Figure.to_json`` writes it."""
        try:
            text: str = value.to_json(pretty=False, engine="json")  # type: ignore[attr-defined]
        except (ValueError, TypeError) as e:
            raise MaterializerError(f"Plotly could not write the figure as JSON: {e}") from e
        return text.encode("utf-8")

    def from_bytes(self, data: bytes) -> object:
        """The figure (``fig.show()``, ``fig.write_html("plot.html")`` work as on the original)."""
        import plotly.io as pio

        try:
            return pio.from_json(data.decode("utf-8"), output_type="Figure", skip_invalid=False)
        except (UnicodeDecodeError, ValueError) as e:
            raise MaterializerError(f"cannot read the bytes as a Plotly figure: {e}") from e
