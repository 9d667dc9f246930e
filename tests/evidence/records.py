"""Small evidence logs, and their data-file records written and parsed without the library.

A record is a 4-byte big-endian payload length, the payload, and the payload's 32-byte
RFC 6962 leaf hash; the data file is :data:`~pollwatch.evidence.log.DATA_MAGIC` and then
records. Tests use these to damage a given record on purpose.
"""

from __future__ import annotations

from pathlib import Path

from pollwatch.evidence.log import DATA_MAGIC, EvidenceLog, canonical_json
from pollwatch.evidence.merkle import leaf_hash

#: bytes of a record's length header
HEADER = 4
#: bytes of a record's leaf hash
HASH = 32


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record in the bytes of a data file."""
    spans, position = [], len(DATA_MAGIC)
    while position < len(data):
        end = position + HEADER + int.from_bytes(data[position : position + HEADER], "big") + HASH
        spans.append((position, end))
        position = end
    return spans


def record(payload: bytes) -> bytes:
    """The bytes of one well-formed record holding ``payload``."""
    return len(payload).to_bytes(HEADER, "big") + payload + leaf_hash(payload)


def sample_entries(count: int) -> list[bytes]:
    """``count`` small distinct JSON entries."""
    return [canonical_json({"item": index, "station": f"S-{index:03}"}) for index in range(count)]


def make_log(folder: Path, count: int) -> tuple[list[bytes], bytes]:
    """A closed log in ``folder`` of ``count`` sample entries in two appends; (entries, root)."""
    entries = sample_entries(count)
    with EvidenceLog(folder) as log:
        log.append(entries[: count // 2])
        log.append(entries[count // 2 :])
        return entries, log.root()
