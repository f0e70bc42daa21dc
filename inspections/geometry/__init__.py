"""Django-free numeric core that judges a scan against its CAD mesh.

``mesh`` loads and validates the reference mesh, ``align`` registers a scan onto it and
``deviation`` computes signed point-to-mesh distances. Nothing here imports Django; the
modules are benchmarked on their own by ``benchmarks/bench_deviation.py``.
"""

from __future__ import annotations
