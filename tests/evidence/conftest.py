"""Fixtures of the evidence tests: a real local RFC 3161 time-stamp authority (``tsa``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.evidence.tsa import LocalTSA, local_tsa, openssl_path


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """A local TSA (OpenSSL ``ts -reply`` over HTTP on 127.0.0.1), shared by the session.

    Skips the test when the ``openssl`` command is missing (CI installs it with apt).
    """
    if openssl_path() is None:
        pytest.skip(
            "the openssl command is not installed: the local time-stamp authority needs "
            "`openssl ts` (apt-get install openssl, or set POLLWATCH_OPENSSL)"
        )
    with local_tsa(tmp_path_factory.mktemp("tsa")) as running:
        yield running
