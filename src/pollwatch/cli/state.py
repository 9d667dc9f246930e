"""What every ``pollwatch`` command shares: the root options' :class:`State` and the consoles.

The root callback (``pollwatch --home ... --mirror ...``) puts a :class:`State` on the Typer
context; a command reaches it with :func:`state` and the resolved settings with
:func:`settings`. A command group registered on a bare Typer app (a test, a program embedding
the commands) finds no State there and gets one built from the environment alone.

The consoles: ``console`` for results on standard output, ``err_console`` for progress and
notices on standard error; ``unfolded_console`` and ``unfolded_err_console`` never fold a long
line, for output that is copied or parsed (tokens, URLs, table rows of the video commands).
Error consoles render no emoji codes, so a ``:name:`` in a file name or message stays as typed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings, load_settings

__all__ = [
    "State",
    "console",
    "err_console",
    "settings",
    "state",
    "unfolded_console",
    "unfolded_err_console",
]

console = Console()
err_console = Console(stderr=True, emoji=False)
unfolded_console = Console(soft_wrap=True)
unfolded_err_console = Console(stderr=True, soft_wrap=True, emoji=False)


class State:
    """Options shared by all commands, resolved once."""

    def __init__(self, home: Path | None, mirror: Path | None) -> None:
        self.home = home
        self.mirror = mirror
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings: the root options over the environment, config file and defaults."""
        if self._settings is None:
            self._settings = load_settings({"home": self.home, "data_mirror": self.mirror})
        return self._settings

    @property
    def store(self) -> ElectionStore:
        """The election store in the settings' elections folder."""
        return ElectionStore(self.settings.elections_dir)


def state(ctx: typer.Context) -> State:
    """The State the root command made, or one from the environment when there is no root."""
    root = ctx.find_root()
    if isinstance(root.obj, State):
        return root.obj
    made = State(None, None)
    if root.obj is None:
        root.obj = made  # resolved once for the rest of this invocation
    return made


def settings(ctx: typer.Context) -> Settings:
    """The resolved settings of this invocation (see :func:`state`)."""
    return state(ctx).settings
