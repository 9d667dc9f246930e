"""Every shell block of README.md and docs/ runs, top to bottom, so the quick starts cannot drift.

Like datasette's documentation tests, but executing: each ```sh, ```bash, ```shell or ```console
block of ``README.md``, ``docs/*.md``, ``docs/importers/*.md`` and ``docs/methods/*.md`` is one
test, named ``<file>:<line of the fence>``. Its lines run in order as one ``bash`` script under
``set -euo pipefail``, in a fresh temporary folder, with:

* ``POLLWATCH_HOME`` a new empty store beside that folder, ``HOME`` and ``TMPDIR`` other new
  folders (so ``~``, the default config file and ``mktemp`` are throwaway too), and no other
  ``POLLWATCH_*`` variable from the caller's environment;
* the virtualenv's ``bin`` first on ``PATH`` and ``.venv`` linked into the folder, so both
  ``pollwatch ...`` and ``.venv/bin/pollwatch ...`` work;
* downloads switched off (``POLLWATCH_DOWNLOAD=false``): a block reads public data only through
  the mirror, and says so with ``needs-mirror`` (the mirror is passed to those blocks only, so a
  block that needs it without saying so fails everywhere, not only where there is no mirror);
* ``POLLWATCH_DEBUG=1``, so that an internal error fails with its traceback;
* a time limit (:data:`DEFAULT_TIMEOUT` seconds unless the block's marker says otherwise).

In a ```console block only the ``$ `` lines (and their ``\\`` continuations) run; the other
lines are output. A block is configured by HTML comments on the lines right before its fence
(each on a line of its own; blank lines between are allowed), which the rendered page does not
show:

* ``<!-- quickstart: skip — REASON -->``: not run, reported as skipped with that reason. The only
  way to leave a block out; a block without it runs.
* ``<!-- quickstart: needs-mirror -->``: gets ``POLLWATCH_DATA_MIRROR`` (skipped when it is not
  set to a folder).
* ``<!-- quickstart: needs-ffmpeg -->``: skipped when the ``ffmpeg`` command is missing.
* ``<!-- quickstart: needs-tsa -->``: a real local RFC 3161 authority (:mod:`tests.evidence.tsa`)
  is running, ``POLLWATCH_TSA_URLS`` is its URL and ``tsa-ca.pem`` in the working folder is its
  CA certificate (skipped when ``openssl`` is missing).
* ``<!-- quickstart: timeout=SECONDS -->``: another time limit.

Directives combine with commas: ``<!-- quickstart: needs-mirror, timeout=300 -->``. A marker
that is not followed by a shell block, an unknown directive, a skip without a reason or a console
block without ``$`` prompts fails :func:`test_quickstart_markup`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.evidence.tsa import LocalTSA, local_tsa, openssl_path

ROOT = Path(__file__).resolve().parent.parent
DOC_GLOBS = ("README.md", "docs/*.md", "docs/importers/*.md", "docs/methods/*.md")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}
DEFAULT_TIMEOUT = 120
NEEDS = {"needs-mirror", "needs-ffmpeg", "needs-tsa"}

_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<language>[\w+-]*)")
_MARKER = re.compile(r"\s*<!--\s*quickstart:(?P<body>.*?)-->\s*")  # a line of its own
_SKIP = re.compile(r"^skip\b\s*[—:-]?\s*(?P<reason>.*)$", re.DOTALL)


@dataclass
class Block:
    """One shell block of a page: where it is, its script lines and its markers."""

    path: str
    line: int  # of the opening fence, 1-based
    language: str
    lines: list[str]  # the block's lines, output lines of a console block blanked
    skip: str | None = None
    needs: set[str] = field(default_factory=set)
    timeout: int = DEFAULT_TIMEOUT

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"


def _documents() -> list[Path]:
    found: set[Path] = set()
    for pattern in DOC_GLOBS:
        found.update(ROOT.glob(pattern))
    return sorted(found)


def _apply_marker(block: Block, body: str, where: str, problems: list[str]) -> None:
    text = body.strip()
    skip = _SKIP.match(text)
    if skip:
        reason = skip.group("reason").strip()
        if not reason:
            problems.append(f"{where}: 'skip' needs a reason: <!-- quickstart: skip — why -->")
        block.skip = reason or "no reason given"
        return
    for directive in (part.strip() for part in text.split(",")):
        if directive in NEEDS:
            block.needs.add(directive)
        elif re.fullmatch(r"timeout=\d+", directive):
            block.timeout = int(directive.partition("=")[2])
        else:
            known = ", ".join(sorted(NEEDS)) + ", timeout=SECONDS, skip — REASON"
            problems.append(f"{where}: unknown quickstart directive {directive!r} ({known})")


def _console_lines(lines: list[str], where: str, problems: list[str]) -> list[str]:
    """The commands of a console block: ``$ `` lines and their continuations; output blanked."""
    kept: list[str] = []
    continued = False
    for line in lines:
        if continued:
            kept.append(line)
        elif line.startswith("$ ") or line == "$":
            kept.append(line[2:])
        else:
            kept.append("")
            continue
        continued = line.rstrip().endswith("\\")
    if not any(kept):
        problems.append(f"{where}: a console block needs '$ ' prompts (or use ```sh)")
    return kept


def parse(path: Path, name: str | None = None) -> tuple[list[Block], list[str]]:
    """The shell blocks of one page, and the problems of its quickstart markup."""
    name = name or path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    pending: list[tuple[int, str]] = []  # markers waiting for their block
    number = 0
    while number < len(text):
        line = text[number]
        opening = _FENCE.match(line)
        if opening is None:
            marker = _MARKER.fullmatch(line)
            if marker:
                pending.append((number + 1, marker.group("body")))
            elif line.strip() and pending:
                where = ", ".join(f"{name}:{n}" for n, _ in pending)
                problems.append(f"{where}: quickstart marker not right before a shell block")
                pending = []
            number += 1
            continue
        fence, language = opening.group("fence"), opening.group("language").lower()
        end = number + 1
        while end < len(text) and not re.fullmatch(
            rf"\s*{re.escape(fence[0])}{{{len(fence)},}}\s*", text[end]
        ):
            end += 1
        if end == len(text):
            problems.append(f"{name}:{number + 1}: code fence never closed")
        body = text[number + 1 : end]
        if language in SHELL_LANGUAGES:
            block = Block(name, number + 1, language, body)
            if language == "console":
                block.lines = _console_lines(body, block.name, problems)
            for marker_line, body_of_marker in pending:
                _apply_marker(block, body_of_marker, f"{name}:{marker_line}", problems)
            blocks.append(block)
        elif pending:
            where = ", ".join(f"{name}:{n}" for n, _ in pending)
            problems.append(
                f"{where}: quickstart marker before a ```{language} block, not a shell one"
            )
        pending = []
        number = end + 1
    if pending:
        where = ", ".join(f"{name}:{n}" for n, _ in pending)
        problems.append(f"{where}: quickstart marker not right before a shell block")
    return blocks, problems


def _collect() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for path in _documents():
        found, wrong = parse(path)
        blocks += found
        problems += wrong
    return blocks, problems


BLOCKS, PROBLEMS = _collect()


def test_quickstart_markup() -> None:
    """Markers are well formed and sit right before a shell block; the collector finds blocks."""
    assert not PROBLEMS, "\n".join(PROBLEMS)
    pages = {block.path for block in BLOCKS}
    assert "README.md" in pages and "docs/evidence.md" in pages, sorted(pages)


def test_markers_are_read(tmp_path: Path) -> None:
    """The parser itself: prompts, continuations, skips, needs and misplaced markers."""
    page = tmp_path / "sample.md"
    sample = (
        "<!-- quickstart: needs-mirror, timeout=7 -->\n"
        "\n"
        "```console\n"
        "$ pollwatch list \\\n"
        "    --help\n"
        "some output\n"
        "$ pollwatch methods\n"
        "```\n"
        "<!-- quickstart: skip — starts a server -->\n"
        "```sh\n"
        "pollwatch serve\n"
        "```\n"
        "<!-- quickstart: skip -->\n"
        "```bash\n"
        "true\n"
        "```\n"
        "<!-- quickstart: needs-mirorr -->\n"
        "```sh\n"
        "true\n"
        "```\n"
        "Prose that names `<!-- quickstart: skip — why -->` is no marker.\n"
        "```sh\n"
        "true\n"
        "```\n"
        "<!-- quickstart: needs-ffmpeg -->\n"
        "text in between\n"
        "```python\n"
        "print()\n"
        "```\n"
    )
    page.write_text(sample, encoding="utf-8")
    blocks, problems = parse(page, "sample.md")
    first, second, third, fourth, fifth = blocks
    assert first.lines == ["pollwatch list \\", "    --help", "", "pollwatch methods"]
    assert (first.needs, first.timeout, first.skip) == ({"needs-mirror"}, 7, None)
    assert second.skip == "starts a server" and second.line == 10
    assert third.skip == "no reason given"
    assert fourth.needs == set()
    assert (fifth.skip, fifth.needs) == (None, set())
    assert len(problems) == 3, problems
    assert "needs a reason" in problems[0]
    assert "'needs-mirorr'" in problems[1]
    assert "sample.md:25" in problems[2]


@pytest.fixture(scope="module")
def quickstart_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """A local RFC 3161 authority for the blocks marked ``needs-tsa``."""
    if openssl_path() is None:
        pytest.skip("needs-tsa: the openssl command is not installed (apt-get install openssl)")
    with local_tsa(tmp_path_factory.mktemp("quickstart-tsa")) as running:
        yield running


def _environment(block: Block, folder: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POLLWATCH_", "XDG_")) or key == "POLLWATCH_OPENSSL"
    }
    bin_folder = Path(sys.prefix) / "bin"
    if shutil.which("pollwatch", path=str(bin_folder)) is None:
        pytest.fail(f"no pollwatch command in {bin_folder}: run the tests from the virtualenv")
    user_home, temporary = folder.parent / "user", folder.parent / "tmp"
    user_home.mkdir()
    temporary.mkdir()
    environment.update(
        HOME=str(user_home),
        TMPDIR=str(temporary),
        PATH=f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        POLLWATCH_HOME=str(folder.parent / "pollwatch-home"),
        POLLWATCH_DOWNLOAD="false",
        POLLWATCH_DEBUG="1",  # an internal error shows its traceback in the failure
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="100",
    )
    if "needs-mirror" in block.needs:
        mirror = os.environ.get("POLLWATCH_DATA_MIRROR")
        if not mirror or not Path(mirror).is_dir():
            pytest.skip(
                f"{block.name} needs-mirror: set POLLWATCH_DATA_MIRROR to a folder laid out "
                "like shared/data (CI sets it to ../shared/data)"
            )
        environment["POLLWATCH_DATA_MIRROR"] = str(Path(mirror).resolve())
    if "needs-ffmpeg" in block.needs and shutil.which("ffmpeg") is None:
        pytest.skip(f"{block.name} needs-ffmpeg: the ffmpeg command is not installed")
    if "needs-tsa" in block.needs:
        tsa: LocalTSA = request.getfixturevalue("quickstart_tsa")
        environment["POLLWATCH_TSA_URLS"] = tsa.url
        shutil.copyfile(tsa.ca_cert_path, folder / "tsa-ca.pem")
    return environment


def _stop(group: int) -> None:
    """End what the block left running in its process group (``&`` jobs): TERM, then KILL."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _param(block: Block) -> object:
    """The block as a test case, marked like the suite's other tests (data, network)."""
    marks = []
    if "needs-mirror" in block.needs:
        marks.append(pytest.mark.data)
    if block.needs & {"needs-tsa", "needs-ffmpeg"}:  # a loopback TSA or simulated cameras
        marks.append(pytest.mark.network)
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.parametrize("block", [_param(block) for block in BLOCKS])
def test_quickstart(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The block's commands run in order and every one succeeds."""
    if block.skip is not None:
        pytest.skip(f"{block.name}: {block.skip}")
    folder = tmp_path / "work"
    folder.mkdir()
    environment = _environment(block, folder, request)
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    offset = block.line - 1  # script line 2 is the block's first line
    header = (
        "set -euo pipefail; trap 'status=$?; echo \"quickstart: "
        f"{block.path}:$((LINENO + {offset})) exited with status $status\" >&2' ERR"
    )
    script = folder.parent / "quickstart.sh"
    script.write_text("\n".join([header, *block.lines]) + "\n", encoding="utf-8")
    log = folder.parent / "output.txt"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status: int | None = process.wait(timeout=block.timeout)
        except subprocess.TimeoutExpired:
            status = None
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        finally:
            _stop(process.pid)
    text = log.read_text(encoding="utf-8", errors="replace")
    tail = "\n".join(text.splitlines()[-60:])
    if status is None:
        pytest.fail(f"{block.name}: still running after {block.timeout} s\n{tail}", False)
    if status != 0:
        failed = re.findall(r"quickstart: \S+:(\d+) exited", text)
        where = f"{block.path}:{failed[-1]}" if failed else block.name
        command = ""
        if failed:
            source = (ROOT / block.path).read_text(encoding="utf-8").splitlines()
            command = f": {source[int(failed[-1]) - 1].strip()}"
        pytest.fail(
            f"quick start {block.name} failed with status {status} at {where}{command}\n"
            f"--- output (last 60 lines) ---\n{tail}",
            False,
        )
    print(text)  # what the block printed, for pytest -rP
