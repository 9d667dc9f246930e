"""RFC 6962 / 9162 Merkle hashing and proofs: standard vectors, a naive reference, properties.

The vectors are transparency-dev/merkle's ``testdata`` (``../shared/vectors/rfc6962-merkle``,
or ``POLLWATCH_VECTORS``): a verifier is correct when it accepts exactly the files with
``"wantErr": false``. The naive reference below is the recursive text of RFC 6962 §2.1,
independent of the cached, iterative code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence import merkle
from pollwatch.evidence.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
    verify_subtree_consistency,
    verify_subtree_inclusion,
)


def _vectors_root() -> Path | None:
    configured = os.environ.get("POLLWATCH_VECTORS")
    base = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"
    )
    folder = base / "rfc6962-merkle"
    return folder.resolve() if folder.is_dir() else None


VECTORS = _vectors_root()
VECTOR_FILES = (
    sorted(path.relative_to(VECTORS).as_posix() for path in VECTORS.rglob("*.json"))
    if VECTORS is not None
    else []
)
MISSING = pytest.mark.skip(
    reason="Merkle test vectors absent: set POLLWATCH_VECTORS to a folder holding "
    "rfc6962-merkle/ (CI uses ../shared/vectors)"
)


# --------------------------------------------------------------------------------------------
# The naive reference: RFC 6962 §2.1 read literally, recursion on lists.
# --------------------------------------------------------------------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    def subproof(m: int, items: list[bytes], known: bool) -> list[bytes]:
        if m == len(items):
            return [] if known else [naive_mth(items)]
        k = _split(len(items))
        if m <= k:
            return [*subproof(m, items[:k], known), naive_mth(items[k:])]
        return [*subproof(m - k, items[k:], False), naive_mth(items[:k])]

    return subproof(m, leaves, True)


def path_shape(m: int, n: int) -> list[str]:
    """Which side each sibling of PATH(m, D[n]) is on: all the verifier can tell apart."""
    if n == 1:
        return []
    k = _split(n)
    return [*path_shape(m, k), "right"] if m < k else [*path_shape(m - k, n - k), "left"]


def proof_shape(m: int, n: int) -> tuple[bool, list[str]]:
    """(seed taken from the proof?, role of each other hash) for PROOF(m, D[n])."""

    def walk(m: int, n: int, known: bool) -> tuple[bool, list[str]]:
        if m == n:
            return (not known, [])
        k = _split(n)
        if m <= k:
            seed, roles = walk(m, k, known)
            return seed, [*roles, "new-right"]
        seed, roles = walk(m - k, n - k, False)
        return seed, [*roles, "both-left"]

    return walk(m, n, True)


LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(300)]


# --------------------------------------------------------------------------------------------
# Vectors.
# --------------------------------------------------------------------------------------------


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(item) for item in value or []]


def _run_vector(kind: str, case: dict[str, Any]) -> None:
    if kind == "inclusion":
        verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case["proof"]),
            _b64(case["root"]),
        )
    elif kind == "consistency":
        verify_consistency(
            case["size1"],
            case["size2"],
            _b64(case["root1"]),
            _b64(case["root2"]),
            _proof(case["proof"]),
        )
    elif kind == "subtreeinclusion":
        verify_subtree_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["start"],
            case["end"],
            _proof(case["proof"]),
            _b64(case["root"]),
        )
    elif kind == "subtreeconsistency":
        verify_subtree_consistency(
            case["start"],
            case["end"],
            case["size"],
            _proof(case["proof"]),
            _b64(case["root1"]),
            _b64(case["root2"]),
        )
    else:
        raise AssertionError(f"unknown vector kind {kind!r}: teach this test about it")


@pytest.mark.parametrize(
    "relative", VECTOR_FILES or [pytest.param("absent", marks=MISSING)], ids=lambda r: r
)
def test_vector(relative: str) -> None:
    assert VECTORS is not None
    case = json.loads((VECTORS / relative).read_text())
    kind = relative.split("/")[0]
    if case["wantErr"]:
        with pytest.raises(VerificationError) as caught:
            _run_vector(kind, case)
        assert caught.value.message  # says why
    else:
        _run_vector(kind, case)


@pytest.mark.skipif(VECTORS is None, reason="Merkle test vectors absent (see test_vector)")
def test_vectors_cover_every_kind_both_ways() -> None:
    seen: dict[tuple[str, bool], int] = {}
    for relative in VECTOR_FILES:
        case = json.loads((VECTORS / relative).read_text())  # type: ignore[operator]
        key = (relative.split("/")[0], bool(case["wantErr"]))
        seen[key] = seen.get(key, 0) + 1
    for kind in ("inclusion", "consistency", "subtreeinclusion", "subtreeconsistency"):
        assert seen.get((kind, False), 0) >= 5, kind
        assert seen.get((kind, True), 0) >= 50, kind


# --------------------------------------------------------------------------------------------
# Hashing.
# --------------------------------------------------------------------------------------------


def test_hash_definitions() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert root_hash([]) == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT


def test_root_matches_rfc6962_reference_tree() -> None:
    # The 8-leaf tree of RFC 6962's test data (transparency-dev's inclusion/1 happy path).
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
    data += [bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    leaves = [leaf_hash(item) for item in data]
    assert root_hash(leaves).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@pytest.mark.parametrize("size", [*range(0, 70), 127, 128, 129, 255, 256, 257, 300])
def test_roots_against_naive_mth(size: int) -> None:
    expected = naive_mth(LEAVES[:size])
    assert root_hash(LEAVES[:size]) == expected
    assert MerkleTree(LEAVES[:size]).root() == expected
    grown = MerkleTree(LEAVES)
    assert grown.root(size) == expected  # a past size of a bigger tree


def test_tree_appends_one_by_one_and_in_bulk_agree() -> None:
    one_by_one = MerkleTree()
    for index, leaf in enumerate(LEAVES[:100]):
        assert one_by_one.append(leaf) == index
        if index % 7 == 0:
            assert one_by_one.root() == naive_mth(LEAVES[: index + 1])
    bulk = MerkleTree(b"".join(LEAVES[:100]))
    assert bulk.root() == one_by_one.root()
    assert bulk.leaf(42) == LEAVES[42]
    assert bulk.leaf_hashes() == b"".join(LEAVES[:100])


# --------------------------------------------------------------------------------------------
# Generated proofs: equal to the naive ones, accepted by the verifiers.
# --------------------------------------------------------------------------------------------


def test_inclusion_proofs_all_pairs_up_to_64() -> None:
    tree = MerkleTree(LEAVES[:64])
    for size in range(1, 65):
        root = naive_mth(LEAVES[:size])
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == naive_path(index, LEAVES[:size]), (index, size)
            verify_inclusion(LEAVES[index], index, size, proof, root)


def test_consistency_proofs_all_pairs_up_to_64() -> None:
    tree = MerkleTree(LEAVES[:64])
    roots = [naive_mth(LEAVES[:size]) for size in range(65)]
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = tree.consistency_proof(old, new)
            assert proof == naive_proof(old, LEAVES[:new]), (old, new)
            verify_consistency(old, new, roots[old], roots[new], proof)


def test_proofs_for_random_larger_sizes() -> None:
    generator = random.Random(6962)
    leaves = [leaf_hash(generator.randbytes(20)) for _ in range(3000)]
    tree = MerkleTree(leaves)
    for _ in range(40):
        size = generator.randrange(65, 3001)
        root = naive_mth(leaves[:size])
        assert tree.root(size) == root
        index = generator.randrange(size)
        proof = tree.inclusion_proof(index, size)
        assert proof == naive_path(index, leaves[:size])
        verify_inclusion(leaves[index], index, size, proof, root)
        old = generator.randrange(1, size + 1)
        proof = tree.consistency_proof(old, size)
        assert proof == naive_proof(old, leaves[:size])
        verify_consistency(old, size, naive_mth(leaves[:old]), root, proof)
    # The module-level helpers give the same answers without a tree.
    assert merkle.inclusion_proof(5, 1000, leaves) == tree.inclusion_proof(5, 1000)
    assert merkle.consistency_proof(77, 1000, leaves) == tree.consistency_proof(77, 1000)


def _valid_subtrees(size: int) -> list[tuple[int, int]]:
    found = []
    for start in range(size):
        for end in range(start + 1, size + 1):
            width = end - start
            if start % (1 << (width - 1).bit_length()) == 0:
                found.append((start, end))
    return found


def test_subtree_proofs_round_trip_up_to_32() -> None:
    tree = MerkleTree(LEAVES[:32])
    for size in range(1, 33):
        root = naive_mth(LEAVES[:size])
        for start, end in _valid_subtrees(size):
            sub_root = naive_mth(LEAVES[start:end])
            assert tree.subtree_hash(start, end) == sub_root
            proof = tree.subtree_consistency_proof(start, end, size)
            verify_subtree_consistency(start, end, size, proof, sub_root, root)
            if start == 0:  # the draft's identity: SUBTREE_PROOF(0, end, D_n) = PROOF(end, D_n)
                assert proof == naive_proof(end, LEAVES[:size])
            for index in range(start, end):
                path = tree.subtree_inclusion_proof(index, start, end)
                assert path == naive_path(index - start, LEAVES[start:end])
                verify_subtree_inclusion(LEAVES[index], index, start, end, path, sub_root)


def test_subtree_example_from_the_draft() -> None:
    # [4, 8) inside a tree of 14: the proof is MTH(D[0:4]) then MTH(D[8:14]).
    tree = MerkleTree(LEAVES[:14])
    assert tree.subtree_consistency_proof(4, 8, 14) == [
        naive_mth(LEAVES[0:4]),
        naive_mth(LEAVES[8:14]),
    ]


def test_generation_refuses_impossible_requests() -> None:
    tree = MerkleTree(LEAVES[:10])
    for call in (
        lambda: tree.inclusion_proof(10),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.inclusion_proof(0, 11),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.consistency_proof(0, 4),
        lambda: tree.root(11),
        lambda: tree.subtree_hash(1, 3),
        lambda: tree.subtree_consistency_proof(8, 12, 10),
        lambda: tree.append(b"short"),
    ):
        with pytest.raises(EvidenceError):
            call()
    assert tree.consistency_proof(4, 4) == []
    assert tree.consistency_proof(0, 0) == []


def test_verifier_reasons_are_specific() -> None:
    tree = MerkleTree(LEAVES[:8])
    proof = tree.inclusion_proof(3, 8)
    root = tree.root()
    with pytest.raises(VerificationError, match="out of range"):
        verify_inclusion(LEAVES[3], 8, 8, proof, root)
    with pytest.raises(VerificationError, match="wrong inclusion proof length: 2 hashes"):
        verify_inclusion(LEAVES[3], 3, 8, proof[:2], root)
    with pytest.raises(VerificationError, match="the proof leads to"):
        verify_inclusion(LEAVES[4], 3, 8, proof, root)
    with pytest.raises(VerificationError, match="leaf hash has 5 bytes"):
        verify_inclusion(b"short", 3, 8, proof, root)
    with pytest.raises(VerificationError, match="larger than new size"):
        verify_consistency(5, 4, root, root, [])
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, 4, EMPTY_ROOT, root, [])
    with pytest.raises(VerificationError, match="2 hashes, sizes 5 -> 8 need 4"):
        verify_consistency(5, 8, tree.root(5), root, tree.consistency_proof(5)[:2])
    with pytest.raises(VerificationError, match="old root"):
        verify_consistency(5, 8, tree.root(6), root, tree.consistency_proof(5))
    with pytest.raises(VerificationError, match="not a subtree"):
        verify_subtree_inclusion(LEAVES[2], 2, 2, 5, [], root)
    with pytest.raises(VerificationError, match="outside 0"):
        verify_inclusion(LEAVES[0], 0, 1 << 64, [], root)


# --------------------------------------------------------------------------------------------
# Properties: any single change to what a verifier is given makes it refuse.
# --------------------------------------------------------------------------------------------

BIG_TREE = MerkleTree(LEAVES[:256])


def _flip(value: bytes, bit: int) -> bytes:
    mutable = bytearray(value)
    mutable[bit // 8 % len(mutable)] ^= 1 << (bit % 8)
    return bytes(mutable)


def _refuses(call: Callable[[], None]) -> bool:
    try:
        call()
    except VerificationError:
        return True
    return False


@st.composite
def inclusion_case(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 256))
    return draw(st.integers(0, size - 1)), size


@settings(max_examples=300, deadline=None)
@given(case=inclusion_case(), target=st.integers(0, 40), bit=st.integers(0, 255))
def test_inclusion_rejects_any_bit_flip(case: tuple[int, int], target: int, bit: int) -> None:
    index, size = case
    proof = BIG_TREE.inclusion_proof(index, size)
    root = BIG_TREE.root(size)
    leaf = LEAVES[index]
    verify_inclusion(leaf, index, size, proof, root)
    if target < len(proof):
        proof = [*proof[:target], _flip(proof[target], bit), *proof[target + 1 :]]
    elif target % 2:
        root = _flip(root, bit)
    else:
        leaf = _flip(leaf, bit)
    assert _refuses(lambda: verify_inclusion(leaf, index, size, proof, root))


@settings(max_examples=300, deadline=None)
@given(case=inclusion_case(), other=st.integers(0, 300), change_index=st.booleans())
def test_inclusion_binds_index_and_tree_shape(
    case: tuple[int, int], other: int, change_index: bool
) -> None:
    index, size = case
    proof = BIG_TREE.inclusion_proof(index, size)
    root = BIG_TREE.root(size)
    if change_index:
        if other == index:
            return
        assert _refuses(lambda: verify_inclusion(LEAVES[index], other, size, proof, root))
    else:
        if other == size:
            return
        # A proof fixes the leaf's position in the tree's shape, not the size itself (the
        # signed checkpoint binds the size to the root): another size is accepted exactly
        # when it gives the leaf the same path shape.
        same_shape = index < other and path_shape(index, other) == path_shape(index, size)
        refused = _refuses(lambda: verify_inclusion(LEAVES[index], index, other, proof, root))
        assert refused != same_shape


@st.composite
def consistency_case(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, 256))
    return draw(st.integers(1, new)), new


@settings(max_examples=300, deadline=None)
@given(case=consistency_case(), target=st.integers(0, 40), bit=st.integers(0, 255))
def test_consistency_rejects_any_bit_flip(case: tuple[int, int], target: int, bit: int) -> None:
    old, new = case
    proof = BIG_TREE.consistency_proof(old, new)
    old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
    verify_consistency(old, new, old_root, new_root, proof)
    if target < len(proof):
        proof = [*proof[:target], _flip(proof[target], bit), *proof[target + 1 :]]
    elif target % 2:
        old_root = _flip(old_root, bit)
    else:
        new_root = _flip(new_root, bit)
    assert _refuses(lambda: verify_consistency(old, new, old_root, new_root, proof))


@settings(max_examples=300, deadline=None)
@given(case=consistency_case(), other=st.integers(0, 300), change_old=st.booleans())
def test_consistency_binds_sizes_up_to_shape(
    case: tuple[int, int], other: int, change_old: bool
) -> None:
    old, new = case
    proof = BIG_TREE.consistency_proof(old, new)
    old_root, new_root = BIG_TREE.root(old), BIG_TREE.root(new)
    claimed = (other, new) if change_old else (old, other)
    if claimed == (old, new):
        return
    refused = _refuses(lambda: verify_consistency(*claimed, old_root, new_root, proof))
    valid_sizes = 0 < claimed[0] <= claimed[1]
    same_shape = valid_sizes and (
        (claimed[0] == claimed[1]) == (old == new)
        and proof_shape(*claimed) == proof_shape(old, new)
    )
    assert refused != same_shape


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 64), choice=st.integers(0, 10_000), bit=st.integers(0, 255))
def test_subtree_consistency_rejects_any_bit_flip(size: int, choice: int, bit: int) -> None:
    subtrees = _valid_subtrees(size)
    start, end = subtrees[choice % len(subtrees)]
    proof = BIG_TREE.subtree_consistency_proof(start, end, size)
    sub_root, root = BIG_TREE.subtree_hash(start, end), BIG_TREE.root(size)
    verify_subtree_consistency(start, end, size, proof, sub_root, root)
    target = choice % (len(proof) + 2)
    if target < len(proof):
        proof = [*proof[:target], _flip(proof[target], bit), *proof[target + 1 :]]
    elif target == len(proof):
        sub_root = _flip(sub_root, bit)
    else:
        root = _flip(root, bit)
    assert _refuses(lambda: verify_subtree_consistency(start, end, size, proof, sub_root, root))


@settings(max_examples=200, deadline=None)
@given(extra=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=2))
def test_proofs_with_extra_or_missing_hashes_are_refused(extra: list[bytes]) -> None:
    proof = BIG_TREE.inclusion_proof(37, 200)
    root = BIG_TREE.root(200)
    assert _refuses(lambda: verify_inclusion(LEAVES[37], 37, 200, [*proof, *extra], root))
    assert _refuses(lambda: verify_inclusion(LEAVES[37], 37, 200, [*extra, *proof], root))
    assert _refuses(lambda: verify_inclusion(LEAVES[37], 37, 200, proof[: -len(extra)], root))
    proof = BIG_TREE.consistency_proof(37, 200)
    old_root = BIG_TREE.root(37)
    assert _refuses(lambda: verify_consistency(37, 200, old_root, root, [*proof, *extra]))
    assert _refuses(lambda: verify_consistency(37, 200, old_root, root, proof[: -len(extra)]))
