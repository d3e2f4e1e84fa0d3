"""The built-in backend's routes: one ``APIRouter`` module per resource (chat, responses,
input_tokens, models, files, batches), their shared checks in :mod:`vizlab.local.http.depends`.
"""

from __future__ import annotations
