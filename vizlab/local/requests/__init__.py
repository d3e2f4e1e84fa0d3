"""Request checks of the built-in backend: validation, image parts, limits, reasoning, fields.
"""

from __future__ import annotations

