"""HTTP plumbing of the built-in backend: intake, api-version, errors, gateway, limits, OpenAPI.
"""

from __future__ import annotations

