"""Evidence archive: tamper-evident, append-only storage of files with proofs and custody.

* :mod:`.objects`: content-addressed, write-once object store (backends behind one interface).
* :mod:`.merkle`: RFC 6962 / 9162 Merkle tree hashing, inclusion and consistency proofs.
* :mod:`.log`: the append-only log of entries (items and custody events), crash-safe.
* :mod:`.checkpoint`: C2SP signed-note checkpoints (Ed25519) and witness cosignatures.
* :mod:`.timestamp`: RFC 3161 time-stamp requests and offline verification of tokens.
* :mod:`.fsck`: damage and crash leftovers in an archive; quarantine of the leftovers.

It may import ``pollwatch.settings``, ``pollwatch.errors`` and ``pollwatch.registry`` only.
"""
