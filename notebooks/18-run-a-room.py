# %% [markdown]
# # 18 · Run a room
#
# **Objectives.** Start a workshop room in front of one deployment, hand out codes, watch spend
# live, revoke a code, and see the refusals attendees may meet. **Time:** 15 minutes.
#
# A room (`vizlab.room`) gives every attendee a code of their own, a budget counted in image
# tokens before anything is sent, and a fair share of the quota; the deployment's key never leaves
# this machine. Here it runs offline, in front of the built-in backend (`local`); on the day you run
# the same thing from a terminal with `python -m vizlab.room serve --upstream-endpoint https://...`
# (docs/facilitator.md, Option C).

# %%
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openai
import requests

import vizlab
from vizlab.room import Room, RoomPanel, RoomSettings

folder = Path(tempfile.mkdtemp(prefix="room-"))
now = datetime.now(timezone.utc)
settings = RoomSettings(
    upstream_endpoint="local",        # the built-in backend, started with a key of its own
    upstream_deployment="vision",
    codes=folder / "codes.csv",
    attendees=3,
    budget_usd=0.01,                  # one cent each: a few high-detail images
    max_output=300,                   # the worst-case output reserved per request
    starts=now - timedelta(minutes=5),
    ends=now + timedelta(hours=2),
)
room = Room(settings).start()
print("room:", room.url)
print("notes:", *settings.notes, sep="\n  ")

# %% [markdown]
# ## The codes
#
# `codes.csv` has one code per attendee; `codes.html` is a page of cards to print and cut. The admin
# key (`room.admin_key`) opens the live view and the admin routes; never show it on a projector.

# %%
codes = sorted(room.codes(), key=lambda c: room.codes()[c].attendee)
print(settings.codes.read_text().splitlines()[0])
print(len(codes), "codes; printable page:", room.codes_page.name)

# %% [markdown]
# ## An attendee's view: two variables
#
# An attendee sets `AZURE_OPENAI_ENDPOINT` to the room and `AZURE_OPENAI_API_KEY` to their code.
# Here we pass the same two values to the SDK directly.

# %%
from PIL import Image

image_url = vizlab.to_data_url(Image.new("RGB", (800, 600), (30, 90, 200)))  # an 800x600 blue card

attendee = openai.AzureOpenAI(azure_endpoint=room.url, api_key=codes[0], api_version="2024-10-21", max_retries=0)
reply = attendee.chat.completions.create(
    model="vision",
    messages=[{"role": "user", "content": [
        {"type": "text", "text": "What colour is this?"},
        {"type": "image_url", "image_url": {"url": image_url, "detail": "high"}},
    ]}],
)
print(reply.choices[0].message.content)
print("usage:", reply.usage.prompt_tokens, "prompt,", reply.usage.completion_tokens, "output")

# %% [markdown]
# ## The budget: counted before sending
#
# Each request's worst case (its image tokens, text and up to `max_output` output tokens) is
# reserved before it is sent, then settled with the usage the deployment reports. When the next
# request could pass the budget, the attendee gets a 403 saying what is left and what it would cost.

# %%
for attempt in range(10):
    try:
        attendee.chat.completions.create(model="vision", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image_url, "detail": "high"}}]}])
    except openai.PermissionDeniedError as e:
        print(f"request {attempt + 2}:", e.response.json()["error"]["message"])
        break

# %% [markdown]
# ## The live view
#
# `RoomPanel` polls `/room/usage` with the admin key: a table per attendee and the room's spend over
# time (`live=True` refreshes it every few seconds). The same view is a web page at `ROOM/room/`.

# %%
panel = RoomPanel(room.url, admin_key=room.admin_key)
panel

# %% [markdown]
# ## Revoke a code, add an attendee, raise a budget: no restart

# %%
admin = {"api-key": room.admin_key}
print(requests.post(room.url + "/room/revoke", json={"attendee": 2}, headers=admin, timeout=10).json())
print(requests.post(room.url + "/room/attendees", json={"count": 1}, headers=admin, timeout=10).json()["added"][0]["attendee"])
print(requests.post(room.url + "/room/budget", json={"attendee": 1, "budget_usd": 0.05}, headers=admin, timeout=10).json())
try:
    openai.OpenAI(base_url=room.url + "/openai/v1/", api_key=codes[1], max_retries=0).chat.completions.create(
        model="vision", messages=[{"role": "user", "content": "hi"}])
except openai.PermissionDeniedError as e:
    print("revoked:", e.response.json()["error"]["message"])
panel.refresh()
print(panel.state.summary())

# %% [markdown]
# ## End the room
#
# Stopping keeps everything in `codes.sqlite`: starting again with the same `codes` path resumes
# with the same codes, admin key and spend.

# %%
room.stop()
