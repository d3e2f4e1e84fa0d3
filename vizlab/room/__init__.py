"""vizlab.room: a workshop room in front of one deployment.

Attendees get a code each and see an Azure endpoint; the room checks code, window and budget
(estimated before sending with vizlab.tokens), paces the room under the quota, forwards with the
upstream key (which never leaves), and settles the usage in SQLite. ``python -m vizlab.room serve``.
"""

from __future__ import annotations

from vizlab.room.panel import RoomPanel, RoomPanelState
from vizlab.room.server import Room
from vizlab.room.settings import RoomSettings

__all__ = ["Room", "RoomPanel", "RoomPanelState", "RoomSettings"]
