"""Benchmarks: run against 127.0.0.1 only, bounded in requests and time, results printed as tables.

`python -m bench.<tool>` from the checkout needs no PYTHONPATH: the layer (goodsdrop), the local
runtime (goodsdrop_local) and the checkout itself are put on the path here, as the Makefile does.
"""

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]
for _path in (_CHECKOUT / "layers" / "common", _CHECKOUT / "local", _CHECKOUT):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))
