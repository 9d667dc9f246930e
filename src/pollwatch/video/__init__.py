"""Polling-station video: recording into the evidence archive, regulated playback, privacy.

Modules:

* :mod:`.segments`: the segment index read from the evidence log (segments, gaps, events,
  per-camera hash chains); every other part reads footage through it.
* :mod:`.manifest`: a station's cameras, declared in a TOML manifest.
* :mod:`.recorder`: pulls camera streams with ffmpeg, cuts fixed-length segments and appends
  each to the evidence log as it closes; outages and reconnects are logged as events.
* :mod:`.simulator`: a real ffmpeg process serving a generated clip as a live camera stream on
  localhost (tests, demos, benchmarks).
* :mod:`.accounts` and :mod:`.policy`: local accounts, roles, sessions and API tokens, and the
  declarative playback policy (deny by default).
* :mod:`.throttle`: failed logins lock an account name and an address for a while.
* :mod:`.custody`: the access and denial entries the web app writes, bounded and rate-limited.
* :mod:`.playback`: the playback service the web app calls: who asks, what the policy allows,
  the custody entry, the bytes to stream.
* :mod:`.audit`: who watched what, from where, and what was denied, read from the custody log.
* :mod:`.folders`: ``<home>/video`` and its folders are created 0700.
* :mod:`.privacy`: irreversible face blurring of public copies (CenterFace via onnxruntime).
* :mod:`.retention`: storage per station and day, court bundles for a station and time window.
"""
