"""Merkle tree hashing, inclusion and consistency proofs, as in RFC 6962 §2.1 and RFC 9162 §2.1.

Definitions (SHA-256 throughout; ``||`` is concatenation):

* Leaf hash: ``leaf_hash(d) = SHA-256(0x00 || d)``; node hash:
  ``node_hash(l, r) = SHA-256(0x01 || l || r)``. The one-byte prefixes keep a leaf from ever
  being mistaken for an interior node (second-preimage protection, RFC 9162 §2.1.1).
* Merkle Tree Hash of a list of n leaves ``D[0:n]``: ``MTH({}) = SHA-256()`` (:data:`EMPTY_ROOT`),
  ``MTH({d0}) = leaf_hash(d0)``, and for n > 1 with k the largest power of two smaller than n,
  ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``. The tree is therefore left-balanced:
  every left subtree is a full (power-of-two) subtree.
* Inclusion proof ``PATH(m, D[0:n])`` (RFC 6962 §2.1.1, RFC 9162 §2.1.3): the sibling hashes on
  the way from leaf m up to the root, lowest first.
* Consistency proof ``PROOF(m, D[0:n])`` (RFC 6962 §2.1.2, RFC 9162 §2.1.4): the fewest node
  hashes that let a verifier who knows ``MTH(D[0:m])`` recompute ``MTH(D[0:n])``, proving that
  the first m leaves are unchanged (the log only appended).
* Subtrees (draft-ietf-plants-merkle-tree-certs, "Subtrees"; the ``subtree*`` vectors of
  transparency-dev/merkle): ``[start, end)`` is a valid subtree when ``start < end`` and start is
  a multiple of the smallest power of two >= ``end - start``; its hash is ``MTH(D[start:end])``.
  A subtree inclusion proof is ``PATH(index - start, D[start:end])``; a subtree consistency
  proof shows that ``MTH(D[start:end])`` is part of the tree ``D[0:n]`` (for start = 0 it is
  exactly ``PROOF(end, D[0:n])``). An empty subtree (``start == end``) hashes to
  :data:`EMPTY_ROOT`, is consistent with any tree and needs an empty proof.

:class:`MerkleTree` holds every full subtree hash (one ``bytearray`` per level), so appends cost
O(1) hashes amortised, and roots and proofs for the current size or any past size cost O(log n)
lookups (a past size is needed to prove consistency with an old checkpoint).

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raise
:class:`~pollwatch.errors.VerificationError` naming the exact reason. They accept exactly the
vectors of transparency-dev/merkle ``testdata/`` that have ``wantErr: false``. Proof hashes and
leaf hashes must be 32 bytes; roots are compared byte for byte as given (the vectors accept an
empty proof between two equal sizes whatever bytes the two equal roots hold).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pollwatch.errors import EvidenceError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_hash",
    "subtree_consistency_proof",
    "verify_consistency",
    "verify_inclusion",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]

HASH_SIZE = 32
"""Bytes in a SHA-256 hash, the only hash this module uses."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""``MTH({})``: the root of the empty tree, SHA-256 of the empty string (RFC 9162 §2.1.1)."""

_MAX_SIZE = (1 << 64) - 1  # tree sizes are uint64 in RFC 9162 and in C2SP checkpoints
_FRESH_PROOF_HINT = "the proof, sizes or hashes do not belong together; fetch a fresh proof"

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 leaf hash of one entry: ``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _short(value: bytes) -> str:
    return value.hex()[:16] + ("…" if len(value) > 8 else "")


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k, for n >= 2 (the split point of MTH)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VerificationError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0 or value > _MAX_SIZE:
        raise VerificationError(f"{name} {value} is outside 0 .. 2^64-1")


def _check_hashes(what: str, proof: Sequence[bytes]) -> None:
    for position, item in enumerate(proof):
        if not isinstance(item, bytes | bytearray) or len(item) != HASH_SIZE:
            length = len(item) if isinstance(item, bytes | bytearray) else type(item).__name__
            raise VerificationError(
                f"{what} hash [{position}] has {length} bytes, want {HASH_SIZE}",
                hint=_FRESH_PROOF_HINT,
            )


def _check_leaf(value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        length = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise VerificationError(
            f"leaf hash has {length} bytes, want {HASH_SIZE}",
            hint="pass leaf_hash(entry), the SHA-256 of 0x00 followed by the entry",
        )


def _match(what: str, computed: bytes, expected: bytes) -> None:
    if bytes(computed) != bytes(expected):
        raise VerificationError(
            f"{what}: the proof leads to {_short(computed)}, the expected root is "
            f"{_short(expected) if expected else '(empty)'}",
            hint=_FRESH_PROOF_HINT,
        )


# --------------------------------------------------------------------------------------------
# Hashing a whole list (no cache).
# --------------------------------------------------------------------------------------------


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of the leaves whose leaf hashes are given, in O(n) time, iteratively.

    Pairs are hashed level by level; an odd last node is carried up unchanged, which builds the
    same left-balanced tree as the recursive definition of RFC 9162 §2.1.1.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = [bytes(item) for item in leaf_hashes]
    while len(level) > 1:
        paired = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``PATH(index, D[0:size])`` over the given leaf hashes (builds a tree: O(size)).

    For many proofs over one log use :class:`MerkleTree`, which answers each in O(log n).
    """
    tree = MerkleTree(leaf_hashes[:size])
    return tree.inclusion_proof(index, size)


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``PROOF(old_size, D[0:new_size])`` over the given leaf hashes (builds a tree: O(n))."""
    tree = MerkleTree(leaf_hashes[:new_size])
    return tree.consistency_proof(old_size, new_size)


def subtree_consistency_proof(
    start: int, end: int, size: int, leaf_hashes: Sequence[bytes]
) -> list[bytes]:
    """The subtree consistency proof of ``[start, end)`` in ``D[0:size]`` (builds a tree)."""
    tree = MerkleTree(leaf_hashes[:size])
    return tree.subtree_consistency_proof(start, end, size)


# --------------------------------------------------------------------------------------------
# The tree with its cache of full subtree hashes.
# --------------------------------------------------------------------------------------------


class MerkleTree:
    """An append-only RFC 6962 tree that keeps every full subtree hash.

    ``levels[h]`` holds, 32 bytes each, the hashes of the full subtrees of ``2**h`` leaves in
    order (``levels[0]`` are the leaf hashes). Upper levels are brought up to date lazily, on
    the first root or proof after an append, so bulk loading costs one hash per node once.
    Full subtree hashes never change as the tree grows, which is what lets :meth:`root`,
    :meth:`inclusion_proof` and :meth:`consistency_proof` answer for any past size.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] | bytes | bytearray = ()) -> None:
        """A tree over ``leaf_hashes``: 32-byte hashes, or their concatenation."""
        self._levels: list[bytearray] = [bytearray()]
        if leaf_hashes:
            self.extend(leaf_hashes)

    # -- growing -------------------------------------------------------------------------

    def append(self, leaf: bytes) -> int:
        """Add one leaf hash (``leaf_hash(entry)``); returns its index."""
        _check_leaf_for_tree(leaf)
        self._levels[0] += leaf
        return self.size - 1

    def extend(self, leaf_hashes: Sequence[bytes] | bytes | bytearray) -> None:
        """Add many leaf hashes: a sequence of 32-byte hashes, or their concatenation."""
        if isinstance(leaf_hashes, bytes | bytearray | memoryview):
            if len(leaf_hashes) % HASH_SIZE:
                raise EvidenceError(
                    f"concatenated leaf hashes are {len(leaf_hashes)} bytes, "
                    f"not a multiple of {HASH_SIZE}"
                )
            self._levels[0] += leaf_hashes
            return
        for leaf in leaf_hashes:
            _check_leaf_for_tree(leaf)
        self._levels[0] += b"".join(leaf_hashes)

    def _update(self) -> None:
        """Hash every full subtree that is not cached yet, level by level."""
        height = 0
        while True:
            below = self._levels[height]
            complete_pairs = len(below) // (2 * HASH_SIZE)
            if complete_pairs == 0:
                return
            if height + 1 == len(self._levels):
                self._levels.append(bytearray())
            above = self._levels[height + 1]
            have = len(above) // HASH_SIZE
            if have < complete_pairs:
                view = memoryview(below)
                above += b"".join(
                    _sha256(b"\x01" + view[2 * HASH_SIZE * i : 2 * HASH_SIZE * (i + 1)]).digest()
                    for i in range(have, complete_pairs)
                )
            height += 1

    # -- reading -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        self._check_index(index, self.size)
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def leaf_hashes(self) -> bytes:
        """All leaf hashes, concatenated (32 bytes each)."""
        return bytes(self._levels[0])

    def _node(self, height: int, index: int) -> bytes:
        level = self._levels[height]
        return bytes(level[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _range_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` from cached full subtrees (start aligned as in RFC splits)."""
        count = end - start
        if count == 0:
            return EMPTY_ROOT
        if count & (count - 1) == 0 and start % count == 0:
            return self._node(count.bit_length() - 1, start // count)
        split = _largest_power_of_two_below(count)
        return node_hash(
            self._range_hash(start, start + split), self._range_hash(start + split, end)
        )

    def _resolve(self, size: int | None, what: str = "size") -> int:
        if size is None:
            return self.size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > self.size:
            raise EvidenceError(
                f"{what} {size!r} is outside 0 .. {self.size}, the tree's size",
                hint="ask for a size the tree has reached",
            )
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise EvidenceError(
                f"leaf index {index!r} is outside 0 .. {size - 1} (tree size {size})",
                hint="leaf indices start at 0 and must be smaller than the tree size",
            )

    def root(self, size: int | None = None) -> bytes:
        """``MTH(D[0:size])``, by default for the current size; any past size works."""
        size = self._resolve(size)
        self._update()
        return self._range_hash(0, size)

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` for a valid subtree (or an empty one, ``start == end``)."""
        _require_valid_subtree(start, end, allow_empty=True, error=EvidenceError)
        self._resolve(end, "subtree end")
        self._update()
        return self._range_hash(start, end)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[0:size])``: the audit path of leaf ``index`` (RFC 9162 §2.1.3.1)."""
        size = self._resolve(size)
        self._check_index(index, size)
        self._update()
        return self._path(index, index + 1, 0, size)

    def subtree_inclusion_proof(self, index: int, start: int, end: int) -> list[bytes]:
        """``PATH(index - start, D[start:end])``: leaf ``index`` inside subtree [start, end)."""
        _require_valid_subtree(start, end, allow_empty=False, error=EvidenceError)
        self._resolve(end, "subtree end")
        if not start <= index < end:
            raise EvidenceError(f"leaf index {index} is outside the subtree [{start}, {end})")
        self._update()
        return self._path(index, index + 1, start, end)

    def _path(self, first: int, last: int, low: int, high: int) -> list[bytes]:
        """Sibling hashes from node ``D[first:last]`` up to ``MTH(D[low:high])``, lowest first."""
        if (first, last) == (low, high):
            return []
        split = low + _largest_power_of_two_below(high - low)
        if first < split:
            return [*self._path(first, last, low, split), self._range_hash(split, high)]
        return [*self._path(first, last, split, high), self._range_hash(low, split)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[0:new_size])`` (RFC 9162 §2.1.4.1); empty when the sizes match.

        A proof from the empty tree does not exist (every tree extends it): ``old_size`` must be
        at least 1 unless both sizes are 0.
        """
        new_size = self._resolve(new_size, "new size")
        old_size = self._resolve(old_size, "old size")
        if old_size > new_size:
            raise EvidenceError(f"old size {old_size} is larger than new size {new_size}")
        if old_size == new_size:
            return []
        if old_size == 0:
            raise EvidenceError(
                "there is no consistency proof from the empty tree",
                hint="every tree is consistent with the empty tree; no proof is needed",
            )
        self._update()
        return self._subtree_proof(0, old_size, 0, new_size, known=True)

    def subtree_consistency_proof(
        self, start: int, end: int, size: int | None = None
    ) -> list[bytes]:
        """The proof that subtree ``[start, end)`` is part of ``D[0:size]``.

        Defined like ``SUBPROOF`` of RFC 6962 §2.1.2, generalised to a subtree that need not
        start at leaf 0 (draft-ietf-plants-merkle-tree-certs); for start = 0 it is
        ``PROOF(end, D[0:size])``.
        """
        size = self._resolve(size)
        _require_valid_subtree(start, end, allow_empty=True, error=EvidenceError)
        if end > size:
            raise EvidenceError(f"subtree end {end} is beyond the tree size {size}")
        if start == end:
            return []
        self._update()
        return self._subtree_proof(start, end, 0, size, known=True)

    def _subtree_proof(self, start: int, end: int, low: int, high: int, known: bool) -> list[bytes]:
        if (start, end) == (low, high):
            # The verifier holds this node's hash only while it is the subtree it was given.
            return [] if known else [self._range_hash(low, high)]
        split = low + _largest_power_of_two_below(high - low)
        if end <= split:
            proof = self._subtree_proof(start, end, low, split, known)
            return [*proof, self._range_hash(split, high)]
        if start >= split:
            proof = self._subtree_proof(start, end, split, high, known)
            return [*proof, self._range_hash(low, split)]
        # The subtree straddles the split, so it starts at `low` (alignment) and its right part
        # is not a node of its own: the verifier cannot know that part's hash.
        proof = self._subtree_proof(split, end, split, high, known=False)
        return [*proof, self._range_hash(low, split)]


def _check_leaf_for_tree(leaf: bytes) -> None:
    if not isinstance(leaf, bytes | bytearray) or len(leaf) != HASH_SIZE:
        raise EvidenceError(
            f"a leaf hash must be {HASH_SIZE} bytes, got {leaf!r:.40}",
            hint="append leaf_hash(entry), not the entry itself",
        )


# --------------------------------------------------------------------------------------------
# Verifiers (RFC 9162 §2.1.3.2, §2.1.4.2).
# --------------------------------------------------------------------------------------------


def _inclusion_proof_length(index: int, size: int) -> int:
    # Below the level where the paths to `index` and `size - 1` meet, every level has a
    # sibling; above it, only the levels where `index`'s ancestor is a right child do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``.

    RFC 9162 §2.1.3.2 steps 1-5 without the final comparison; raises VerificationError when
    the index is out of range or the proof has the wrong length for (index, size).
    """
    _check_size("tree size", size)
    _check_size("leaf index", index)
    if index >= size:
        raise VerificationError(
            f"leaf index {index} is out of range for a tree of size {size}",
            hint="a leaf index must be smaller than the tree size",
        )
    _check_leaf(leaf)
    _check_hashes("inclusion proof", proof)
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise VerificationError(
            f"wrong inclusion proof length: {len(proof)} hashes, a leaf at index {index} in a "
            f"tree of size {size} needs {want}",
            hint=_FRESH_PROOF_HINT,
        )
    first, last = index, size - 1
    result = bytes(leaf)
    for sibling in proof:
        if first & 1 or first == last:
            result = node_hash(bytes(sibling), result)
            if not first & 1:
                # A node on the right border with no right sibling: climb until it is one.
                while first and not first & 1:
                    first >>= 1
                    last >>= 1
        else:
            result = node_hash(result, bytes(sibling))
        first >>= 1
        last >>= 1
    # Guaranteed by the length check above; kept as the RFC's own final test.
    if last != 0:
        raise VerificationError("inclusion proof too short for the tree size")
    return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Returns None on success; raises VerificationError naming the reason
    (index out of range, wrong proof length, malformed hash, root mismatch).
    """
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    _match(f"inclusion proof for leaf {index} in tree size {size} fails", computed, root)


def verify_subtree_inclusion(
    leaf: bytes, index: int, start: int, end: int, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` within the subtree ``[start, end)`` with that hash.

    The proof is ``PATH(index - start, D[start:end])``; the subtree must be valid (non-empty,
    start a multiple of the smallest power of two >= end - start).
    """
    for name, value in (("leaf index", index), ("subtree start", start), ("subtree end", end)):
        _check_size(name, value)
    _require_valid_subtree(start, end, allow_empty=False, error=VerificationError)
    if not start <= index < end:
        raise VerificationError(
            f"leaf index {index} is out of range for the subtree [{start}, {end})",
            hint="the leaf must lie inside the subtree",
        )
    computed = root_from_inclusion_proof(index - start, end - start, leaf, proof)
    _match(
        f"inclusion proof for leaf {index} in subtree [{start}, {end}) fails",
        computed,
        subtree_root,
    )


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    seed = 0 if old_size == 1 << shift else 1
    return seed + (inner - shift) + border


def root_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> bytes:
    """The new root that ``proof`` implies, after checking it reproduces ``old_root``.

    RFC 9162 §2.1.4.2 (requires 0 < old_size <= new_size). Raises VerificationError when the
    sizes are impossible, the proof has the wrong length, or it does not lead to ``old_root``.
    """
    _check_size("old size", old_size)
    _check_size("new size", new_size)
    if new_size < old_size:
        raise VerificationError(
            f"old size {old_size} is larger than new size {new_size}",
            hint="a log only grows: the old checkpoint must not be larger than the new one",
        )
    if old_size == 0:
        raise VerificationError(
            "a consistency proof from the empty tree (old size 0) proves nothing",
            hint="every tree extends the empty tree; check the new checkpoint on its own",
        )
    _check_hashes("consistency proof", proof)
    if old_size == new_size:
        if proof:
            raise VerificationError(
                f"wrong consistency proof length: {len(proof)} hashes for equal sizes "
                f"{old_size}, want 0",
                hint=_FRESH_PROOF_HINT,
            )
        return bytes(old_root)
    if not proof:
        raise VerificationError(
            f"empty consistency proof between different sizes {old_size} and {new_size}",
            hint=_FRESH_PROOF_HINT,
        )
    want = _consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise VerificationError(
            f"wrong consistency proof length: {len(proof)} hashes, sizes {old_size} -> "
            f"{new_size} need {want}",
            hint=_FRESH_PROOF_HINT,
        )
    path = [bytes(item) for item in proof]
    if old_size & (old_size - 1) == 0:
        # The old tree is a full subtree of the new one: the verifier knows its hash.
        path.insert(0, bytes(old_root))
    first, second = old_size - 1, new_size - 1
    while first & 1:
        first >>= 1
        second >>= 1
    old_hash = new_hash = path[0]
    for sibling in path[1:]:
        if second == 0:
            raise VerificationError("consistency proof too long", hint=_FRESH_PROOF_HINT)
        if first & 1 or first == second:
            old_hash = node_hash(sibling, old_hash)
            new_hash = node_hash(sibling, new_hash)
            if not first & 1:
                while first and not first & 1:
                    first >>= 1
                    second >>= 1
        else:
            new_hash = node_hash(new_hash, sibling)
        first >>= 1
        second >>= 1
    if second != 0:
        raise VerificationError("consistency proof too short", hint=_FRESH_PROOF_HINT)
    _match(
        f"consistency proof {old_size} -> {new_size} does not reproduce the old root",
        old_hash,
        old_root,
    )
    return new_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends the tree (old_size, old_root).

    RFC 9162 §2.1.4.2. Returns None on success; raises VerificationError naming the reason.
    """
    computed = root_from_consistency_proof(old_size, new_size, old_root, proof)
    _match(
        f"consistency proof {old_size} -> {new_size} does not lead to the new root",
        computed,
        new_root,
    )


def _require_valid_subtree(
    start: int, end: int, *, allow_empty: bool, error: type[EvidenceError]
) -> None:
    if isinstance(start, bool) or isinstance(end, bool):
        raise error("subtree bounds must be integers")
    if start < 0 or end < 0:
        raise error(f"subtree [{start}, {end}) has a negative bound")
    if start > end or (start == end and not allow_empty):
        raise error(
            f"subtree [{start}, {end}) is empty or reversed",
            hint="a subtree needs start < end",
        )
    if start == end:
        return
    width = end - start
    alignment = 1 << (width - 1).bit_length()  # smallest power of two >= width
    if start % alignment:
        raise error(
            f"[{start}, {end}) is not a subtree: start must be a multiple of {alignment}, the "
            f"smallest power of two >= its width {width}",
            hint="subtrees are aligned ranges, as in draft-ietf-plants-merkle-tree-certs",
        )


def verify_subtree_consistency(
    start: int,
    end: int,
    size: int,
    proof: Sequence[bytes],
    subtree_root: bytes,
    root: bytes,
) -> None:
    """Check that the subtree ``[start, end)`` with ``subtree_root`` is part of (size, root).

    The subtree's node, grown to the tree of ``size``, is reached in two steps: inside the
    full-width node ``[start, start + 2^h)`` an RFC 9162 consistency proof from ``end - start``
    leaves to what that node holds at ``size``; above it an inclusion proof of that node. For
    start = 0 this is exactly :func:`verify_consistency` from ``end`` to ``size``. An empty
    subtree must hash to :data:`EMPTY_ROOT`, with an empty proof, and says nothing about
    ``root``.
    """
    for name, value in (("subtree start", start), ("subtree end", end), ("tree size", size)):
        _check_size(name, value)
    _require_valid_subtree(start, end, allow_empty=True, error=VerificationError)
    if end > size:
        raise VerificationError(
            f"subtree end {end} is beyond the tree size {size}",
            hint="the subtree must lie inside the tree",
        )
    _check_hashes("subtree consistency proof", proof)
    if start == end:
        if proof:
            raise VerificationError(
                f"wrong subtree consistency proof length: {len(proof)} hashes for an empty "
                "subtree, want 0",
                hint=_FRESH_PROOF_HINT,
            )
        _match("an empty subtree must hash to SHA-256 of nothing", bytes(subtree_root), EMPTY_ROOT)
        return
    if start == 0 and end == size:
        if proof:
            raise VerificationError(
                f"wrong subtree consistency proof length: {len(proof)} hashes when the subtree "
                "is the whole tree, want 0",
                hint=_FRESH_PROOF_HINT,
            )
        _match("the subtree is the whole tree, but its hash", bytes(subtree_root), root)
        return
    height = (start ^ (end - 1)).bit_length()  # the subtree's node spans 2**height leaves
    node_width = min(1 << height, size - start)
    node_index, level_size = start >> height, ((size - 1) >> height) + 1
    above = _inclusion_proof_length(node_index, level_size)
    if len(proof) < above:
        raise VerificationError(
            f"wrong subtree consistency proof length: {len(proof)} hashes, fewer than the "
            f"{above} needed above the subtree [{start}, {end}) in a tree of size {size}",
            hint=_FRESH_PROOF_HINT,
        )
    inside, outside = proof[: len(proof) - above], proof[len(proof) - above :]
    width = end - start
    if width == node_width:
        if inside:
            raise VerificationError(
                f"wrong subtree consistency proof length: {len(proof)} hashes, want {above}",
                hint=_FRESH_PROOF_HINT,
            )
        grown = bytes(subtree_root)
    else:
        if not inside:
            raise VerificationError(
                f"wrong subtree consistency proof length: {len(proof)} hashes, the subtree "
                f"[{start}, {end}) has grown and needs more",
                hint=_FRESH_PROOF_HINT,
            )
        grown = root_from_consistency_proof(width, node_width, subtree_root, inside)
    computed = root_from_inclusion_proof(node_index, level_size, grown, outside)
    _match(
        f"subtree consistency proof for [{start}, {end}) in tree size {size} fails",
        computed,
        root,
    )
