"""Preview images of a QC result (Django-free, Pillow): histogram and heatmap.

Both use the same colour classes, the tolerance bands of the contract:
d < -F dark blue, -F..-T light blue, |d| <= T green, T..F orange, d > F red
(one-sided contracts colour only the constrained side as out of tolerance).
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

BAND_COLOURS = {
    "below_fail": (33, 60, 160),
    "below_tol": (110, 170, 235),
    "in_tol": (60, 170, 80),
    "above_tol": (245, 160, 40),
    "above_fail": (210, 40, 40),
}
_ORDER = ["below_fail", "below_tol", "in_tol", "above_tol", "above_fail"]


def band_of(d_mm: npt.NDArray[np.float64], tolerance_mm: float, fail_mm: float,
            side: str = "both") -> npt.NDArray[np.int8]:
    """Colour class index (0..4, see _ORDER) of each signed deviation (mm)."""
    lo_t, lo_f = (-np.inf, -np.inf) if side == "plus" else (-tolerance_mm, -fail_mm)
    hi_t, hi_f = (np.inf, np.inf) if side == "minus" else (tolerance_mm, fail_mm)
    out = np.full(d_mm.shape, 2, dtype=np.int8)
    out[d_mm < lo_t] = 1
    out[d_mm < lo_f] = 0
    out[d_mm > hi_t] = 3
    out[d_mm > hi_f] = 4
    return out


def _palette() -> npt.NDArray[np.uint8]:
    return np.array([BAND_COLOURS[name] for name in _ORDER], dtype=np.uint8)


def _legend(draw: ImageDraw.ImageDraw, x: int, y: int, tolerance_mm: float, fail_mm: float,
            font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    labels = [f"< -{fail_mm:g} mm", f"-{fail_mm:g}..-{tolerance_mm:g}",
              f"|d| <= {tolerance_mm:g} mm", f"{tolerance_mm:g}..{fail_mm:g}",
              f"> {fail_mm:g} mm"]
    for i, (name, text) in enumerate(zip(_ORDER, labels, strict=True)):
        draw.rectangle([x, y + i * 16, x + 12, y + i * 16 + 12], fill=BAND_COLOURS[name])
        draw.text((x + 18, y + i * 16), text, fill=(0, 0, 0), font=font)


def histogram_png(centres_mm: npt.ArrayLike, counts: npt.ArrayLike, *, tolerance_mm: float,
                  fail_mm: float, uncertainty_mm: float, side: str = "both",
                  width: int = 720, height: int = 360) -> bytes:
    """Histogram of signed deviations with the bands coloured and T, F, U marked."""
    c = np.asarray(centres_mm, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    font = ImageFont.load_default()
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 50, width - 150, 20, height - 40
    nz = np.nonzero(n)[0]
    span = max(1.5 * fail_mm, float(np.abs(c[nz]).max()) if nz.size else fail_mm)
    lo, hi = -span, span
    edges = np.linspace(lo, hi, 121)
    which = np.clip(np.searchsorted(edges, c) - 1, 0, 119)
    inside = (c >= lo) & (c <= hi)
    binned = np.bincount(which[inside], weights=n[inside], minlength=120)
    peak = max(float(binned.max()), 1.0)
    mids = (edges[:-1] + edges[1:]) / 2
    bands = band_of(mids, tolerance_mm, fail_mm, side)
    palette = _palette()
    bar = (right - left) / 120
    for i, value in enumerate(binned):
        h = (bottom - top) * value / peak
        x0 = left + i * bar
        draw.rectangle([x0, bottom - h, x0 + bar - 1, bottom],
                       fill=tuple(int(v) for v in palette[bands[i]]))
    draw.line([left, bottom, right, bottom], fill=(0, 0, 0))
    draw.line([left, top, left, bottom], fill=(0, 0, 0))

    def x_of(value: float) -> float:
        return left + (value - lo) / (hi - lo) * (right - left)

    for value, colour in ((tolerance_mm, (0, 120, 0)), (fail_mm, (170, 0, 0))):
        for sign in (-1, 1):
            draw.line([x_of(sign * value), top, x_of(sign * value), bottom], fill=colour)
    if uncertainty_mm > 0:
        for sign in (-1, 1):
            x0, x1 = sorted((x_of(sign * (tolerance_mm - uncertainty_mm)),
                             x_of(sign * (tolerance_mm + uncertainty_mm))))
            draw.rectangle([x0, top, x1, top + 6], outline=(90, 90, 90))
    for value in (lo, lo / 2, 0.0, hi / 2, hi):
        draw.text((x_of(value) - 12, bottom + 6), f"{value:.2f}", fill=(0, 0, 0), font=font)
    draw.text((left, bottom + 22), "signed deviation (mm); boxes: T +- U", fill=(0, 0, 0),
              font=font)
    _legend(draw, right + 12, top, tolerance_mm, fail_mm, font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def heatmap_png(xyz: npt.ArrayLike, d_mm: npt.ArrayLike, *, tolerance_mm: float,
                fail_mm: float, side: str = "both", size: int = 360) -> bytes:
    """Two orthographic views (along the model's thinnest and longest axes) of the points
    coloured by band; nearer points are drawn over farther ones."""
    pts = np.asarray(xyz, dtype=np.float64)
    d = np.asarray(d_mm, dtype=np.float64)
    font = ImageFont.load_default()
    image = Image.new("RGB", (2 * size + 130, size + 24), "white")
    draw = ImageDraw.Draw(image)
    if pts.shape[0]:
        extent = pts.max(axis=0) - pts.min(axis=0)
        axes = np.argsort(extent)  # thinnest first
        bands = band_of(d, tolerance_mm, fail_mm, side)
        colours = _palette()[bands]
        # draw out-of-band points last so a single defect stays visible
        for view, depth_axis in enumerate((axes[0], axes[2])):
            u_axis, v_axis = [a for a in range(3) if a != depth_axis]
            u, v, w = pts[:, u_axis], pts[:, v_axis], pts[:, depth_axis]
            scale = (size - 20) / max(float(np.ptp(u)), float(np.ptp(v)), 1e-12)
            px = ((u - u.min()) * scale + 10).astype(int)
            py = (size - 10 - (v - v.min()) * scale).astype(int)
            canvas = np.full((size, size, 3), 255, dtype=np.uint8)
            order = np.lexsort((w, bands != 2))
            for k in (0, 1):
                sel = order
                xs = np.clip(px[sel] + k, 0, size - 1)
                canvas[np.clip(py[sel], 0, size - 1), xs] = colours[sel]
            image.paste(Image.fromarray(canvas), (view * size, 20))
            draw.text((view * size + 10, 4), ("top" if view == 0 else "side") + " view",
                      fill=(0, 0, 0), font=font)
    _legend(draw, 2 * size + 8, 30, tolerance_mm, fail_mm, font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
