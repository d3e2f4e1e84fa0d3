"""The built-in backend's routes: one module per resource (chat, responses, models, batches).
"""

from __future__ import annotations

