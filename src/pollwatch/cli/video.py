"""``pollwatch video ...``: record cameras, manage accounts and policy, blur, export.

The sub-commands live in three modules, each with a ``register(video_app)`` function:
:mod:`.video_record` (record, simulate-camera, segments, timeline), :mod:`.video_access`
(users, tokens, policy checks, audit) and :mod:`.video_privacy` (blur, storage, export).
"""

from __future__ import annotations

import typer

from . import video_access, video_privacy, video_record

__all__ = ["video_app"]

video_app = typer.Typer(
    help="Polling-station video: record into the evidence archive, regulate playback, blur.",
    no_args_is_help=True,
)
for _module in (video_record, video_access, video_privacy):
    _module.register(video_app)
