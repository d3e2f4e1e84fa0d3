"""vizlab: learn, explore and measure vision-enabled chat models in Jupyter.

The public API is listed here explicitly; anything not imported here is internal.
"""

from __future__ import annotations

from vizlab import errors
from vizlab.errors import VizlabError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    "VizlabError",
]
