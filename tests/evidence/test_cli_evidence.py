"""'pollwatch evidence' end to end: init, add, get, witness, export, verify."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pollwatch.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evidence_commands(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evidence", "init", "--origin", "observers.example/log")
    assert code == 0, err
    log_key = re.search(r"(observers\.example/log\+[0-9a-f]{8}\+\S+)", out)
    assert log_key is not None
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video bytes")
    code, out, _ = run(capsys, "evidence", "add", str(clip), "--station", "77-1", "--device", "c1")
    assert code == 0
    sha = out.split()[0]
    assert len(sha) == 64
    copy = tmp_path / "copy.mp4"
    assert run(capsys, "evidence", "get", sha[:12], "-o", str(copy), "--reason", "review")[0] == 0
    assert copy.read_bytes() == b"video bytes"
    code, out, _ = run(capsys, "evidence", "show", sha[:12])
    assert "access" in out and "review" in out

    witness = tmp_path / "witness"
    code, out, _ = run(
        capsys, "evidence", "witness", "init", "--dir", str(witness), "--name",
        "watchers.example/w1", "--log-key", log_key.group(1),
    )  # fmt: skip
    assert code == 0
    witness_key = re.search(r"(watchers\.example/w1\+[0-9a-f]{8}\+\S+)", out)
    assert witness_key is not None
    assert run(capsys, "evidence", "checkpoint")[0] == 0
    assert run(capsys, "evidence", "witness", "cosign", "--dir", str(witness))[0] == 0

    bundle = tmp_path / "bundle.zip"
    code, out, err = run(
        capsys, "evidence", "export", sha[:12], "-o", str(bundle), "--reason", "court",
        "--witness-dir", str(witness),
    )  # fmt: skip
    assert code == 0, err
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {log_key.group(1)}\nwitness {witness_key.group(1)}\n")
    code, out, err = run(
        capsys, "evidence", "verify", str(bundle), "--trust", str(trust), "--witnesses", "1"
    )
    assert code == 0, out + err
    assert "FAIL" not in out and "witness cosignatures" in out
    code, out, _ = run(capsys, "evidence", "verify")
    assert code == 0 and "verify" in out
    code, out, _ = run(capsys, "evidence", "log", "--json")
    assert code == 0 and '"action":"export"' in out.replace(" ", "")


def test_evidence_errors_are_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "evidence", "log")
    assert code == 2 and "pollwatch evidence init" in err
    assert run(capsys, "evidence", "init")[0] == 0
    code, _, err = run(capsys, "evidence", "show", "0123456789abcdef")
    assert code == 2 and "no item" in err and "Traceback" not in err
