"""Reply emulation: completion, shaping, structured outputs, tools, streaming, caching, filters,
Responses objects, and the batch store and worker.
"""

from __future__ import annotations

