"""What routes are given instead of closure variables: FastAPI dependencies on ``app.state``.

:func:`pollwatch.web.app.create_app` puts one of each on ``app.state``: the settings, the
:class:`~pollwatch.web.catalogue.Catalogue` (store and loaded elections), the import
:class:`~pollwatch.web.jobs.ImportJobs` and the video
:class:`~pollwatch.video.playback.PlaybackService`. A route asks for one by annotating a
parameter with :data:`SettingsDep`, :data:`CatalogueDep`, :data:`JobsDep` or
:data:`PlaybackDep`; none of them is a request parameter, so the OpenAPI schema does not
change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from pollwatch.settings import Settings
from pollwatch.video.playback import PlaybackService

from .catalogue import Catalogue
from .jobs import ImportJobs

__all__ = ["CatalogueDep", "JobsDep", "PlaybackDep", "SettingsDep"]

T = TypeVar("T")


def _state(attribute: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency that gives the app's ``app.state.<attribute>`` (a ``kind``)."""

    def dependency(request: Request) -> T:
        value: T = getattr(request.app.state, attribute)
        return value

    dependency.__name__ = f"{attribute}_of"
    return dependency


#: the app's settings
SettingsDep = Annotated[Settings, Depends(_state("settings", Settings))]
#: the app's store and loaded elections
CatalogueDep = Annotated[Catalogue, Depends(_state("catalogue", Catalogue))]
#: the app's import workers
JobsDep = Annotated[ImportJobs, Depends(_state("jobs", ImportJobs))]
#: the app's video service: accounts, policy, archive, custody
PlaybackDep = Annotated[PlaybackService, Depends(_state("video", PlaybackService))]
