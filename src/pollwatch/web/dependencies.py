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

from typing import Annotated

from fastapi import Depends, Request

from pollwatch.settings import Settings
from pollwatch.video.playback import PlaybackService

from .catalogue import Catalogue
from .jobs import ImportJobs

__all__ = ["CatalogueDep", "JobsDep", "PlaybackDep", "SettingsDep"]


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def catalogue_of(request: Request) -> Catalogue:
    """The app's store and loaded elections."""
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


def jobs_of(request: Request) -> ImportJobs:
    """The app's import workers."""
    jobs: ImportJobs = request.app.state.jobs
    return jobs


def playback_of(request: Request) -> PlaybackService:
    """The app's video service: accounts, policy, archive, custody."""
    playback: PlaybackService = request.app.state.video
    return playback


SettingsDep = Annotated[Settings, Depends(settings_of)]
CatalogueDep = Annotated[Catalogue, Depends(catalogue_of)]
JobsDep = Annotated[ImportJobs, Depends(jobs_of)]
PlaybackDep = Annotated[PlaybackService, Depends(playback_of)]
