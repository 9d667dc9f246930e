"""Candidate-name consolidation for long US files whose spellings vary by state and county.

A national file assembled from state and county sources spells one candidate in many ways:
``"Joseph R. Biden"``, ``"JOSEPH R BIDEN"``, ``"Biden, Joseph R."``, ``"Biden/Harris"``,
``"Joseph R. Biden Jr."``. Left apart, each spelling is its own candidate and every share-based
method runs on a fragment. :func:`consolidate_names` groups the distinct spellings of one contest
into persons, by a *name key*:

1. quoted nicknames (``"Rocky"``) and parenthesised parts (``(DEM)``, ``(Write-In)``) are
   dropped;
2. a ticket is cut to its first name: ``"Biden / Harris"``, ``"Biden & Harris"``, ``"Biden and
   Harris"``, ``"Biden - Harris"`` -> ``"Biden"`` (a hyphen without spaces is kept:
   ``Ocasio-Cortez``);
3. ``"Last, First Middle"`` becomes ``"First Middle Last"``; a comma before a suffix
   (``"Biden, Jr."``) is not an inversion;
4. lower case; dots, commas and apostrophes dropped; suffixes (``Jr``, ``Sr``, ``II``, ``III``,
   ``IV``) and one-letter middle initials dropped;
5. the key is ``"first last"`` (first and last remaining words, middle names dropped), with
   common diminutives of the first name replaced (:data:`NICKNAMES`: ``Joe`` -> ``joseph``); a
   single remaining word is a *surname only* (``"Biden"`` from ``"Biden/Harris"``).

A surname-only spelling joins the one person of the contest with that surname; where several
persons share it, it stays apart and a warning says so. Persons left with one surname and
different first names (``"Joe Smith"``, ``"John Smith"``) are not merged and are warned about.
Write-in lines, ``Other`` lumps and names reduced to nothing keep their case-and-spacing
identity. Users force a merge (``spelling -> candidate``) or forbid one (``spelling`` keeps its
own column) through overrides; every merge is listed with the votes of each spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "NICKNAMES",
    "SUFFIXES",
    "NameConsolidation",
    "NameGroup",
    "consolidate_names",
    "name_key",
    "plain_identity",
]

#: Name suffixes dropped from the key.
SUFFIXES: frozenset[str] = frozenset({"jr", "sr", "ii", "iii", "iv"})
#: Common English diminutives of first names, replaced by the full name in the key.
NICKNAMES: Mapping[str, str] = {
    "joe": "joseph",
    "bernie": "bernard",
    "don": "donald",
    "donnie": "donald",
    "mike": "michael",
    "bill": "william",
    "billy": "william",
    "will": "william",
    "bob": "robert",
    "bobby": "robert",
    "rob": "robert",
    "jim": "james",
    "jimmy": "james",
    "tom": "thomas",
    "tommy": "thomas",
    "dick": "richard",
    "rick": "richard",
    "howie": "howard",
    "chris": "christopher",
    "dan": "daniel",
    "dave": "david",
    "steve": "steven",
    "tim": "timothy",
    "pete": "peter",
    "ron": "ronald",
    "ken": "kenneth",
    "larry": "lawrence",
    "liz": "elizabeth",
    "beth": "elizabeth",
    "kathy": "katherine",
    "katie": "katherine",
}

_QUOTED = re.compile(r"[\"“”][^\"“”]*[\"“”]")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_TICKET = re.compile(r"\s*/\s*|\s+&\s+|\s+and\s+|\s+-\s+|\s+–\s+", re.IGNORECASE)
_DROP = re.compile(r"[.,]")
_APOSTROPHES = re.compile(r"['’`]")
_OTHER_PUNCTUATION = re.compile(r"[^\w\s-]")


def _reason_note(reason: str) -> str:
    return "" if reason in ("", "same key") else f" [{reason}]"


def plain_identity(name: str) -> str:
    """The name trimmed, lower case, inner spacing collapsed (the identity without merging)."""
    return re.sub(r"\s+", " ", name.strip()).lower()


def name_key(name: str) -> tuple[str, bool]:
    """The consolidation key of a spelling and whether it is a surname only (module docstring).

    ``"Biden, Joseph R. Jr."`` -> ``("joseph biden", False)``; ``"Biden/Harris"`` ->
    ``("biden", True)``; a name with no letters left -> its :func:`plain_identity`.
    """
    text = _BRACKETED.sub(" ", _QUOTED.sub(" ", name))
    parts = [p for p in _TICKET.split(text) if p.strip()]
    text = parts[0] if parts else text
    if "," in text:
        pieces = [p.strip() for p in text.split(",") if p.strip()]
        words = [p for p in pieces if _DROP.sub("", p).strip().lower() not in SUFFIXES]
        text = f"{words[1]} {words[0]}" if len(words) == 2 else " ".join(words)
    text = _OTHER_PUNCTUATION.sub(" ", _DROP.sub(" ", _APOSTROPHES.sub("", text)).lower())
    tokens = [t for t in text.split() if t not in SUFFIXES and len(t) > 1]
    if not tokens:
        return plain_identity(name), False
    if len(tokens) == 1:
        return tokens[0], True
    first = NICKNAMES.get(tokens[0], tokens[0])
    return f"{first} {tokens[-1]}", False


@dataclass(frozen=True)
class NameGroup:
    """One candidate after consolidation: its key and the spellings merged into it, with votes.

    ``reasons`` says for each spelling why it joined (``"same key"``, ``"surname only"``,
    ``"forced"``, ``"kept apart"``).
    """

    key: str
    spellings: tuple[tuple[str, int], ...]
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The spelling to show: a full name over a surname alone, no running mate, not all
        capitals, no brackets or inversion, then the most votes (ties: alphabetical)."""

        def score(item: tuple[str, int]) -> tuple[bool, bool, bool, bool, int]:
            spelling, votes = item
            return (
                not name_key(spelling)[1],
                len([p for p in _TICKET.split(spelling) if p.strip()]) < 2,
                not (spelling.isupper() or spelling.islower()),
                not re.search(r"[(),\[]", spelling),
                votes,
            )

        return max(sorted(self.spellings), key=score)[0]

    @property
    def votes(self) -> int:
        return sum(v for _, v in self.spellings)


@dataclass(frozen=True)
class NameConsolidation:
    """The outcome of :func:`consolidate_names`: identity per spelling, groups, warnings."""

    identity: Mapping[str, str]
    groups: tuple[NameGroup, ...]
    warnings: tuple[str, ...]

    @property
    def display(self) -> dict[str, str]:
        """The spelling shown for each identity (see :attr:`NameGroup.display`)."""
        return {g.key: g.display for g in self.groups}

    @property
    def merged(self) -> tuple[NameGroup, ...]:
        """The groups holding more than one spelling."""
        return tuple(g for g in self.groups if len(g.spellings) > 1)

    def report(self, display: Mapping[str, str] | None = None) -> str:
        """One line per merged candidate: ``Name (total) <- 'spelling' (votes), ...``."""
        lines = []
        for group in sorted(self.merged, key=lambda g: -g.votes):
            name = (display or {}).get(group.key, group.display)
            parts = ", ".join(
                f"{s!r} ({v:,})" + _reason_note(group.reasons.get(s, ""))
                for s, v in group.spellings
            )
            lines.append(f"{name} ({group.votes:,} votes) <- {parts}")
        return "\n".join(lines)

    def to_json(self, display: Mapping[str, str] | None = None) -> str:
        """The merges as JSON: ``[{"candidate", "key", "votes", "spellings": [...]}]``."""
        return json.dumps(
            [
                {
                    "candidate": (display or {}).get(g.key, g.display),
                    "key": g.key,
                    "votes": g.votes,
                    "spellings": [
                        {"spelling": s, "votes": v, "reason": g.reasons.get(s, "")}
                        for s, v in g.spellings
                    ],
                }
                for g in sorted(self.merged, key=lambda g: -g.votes)
            ],
            ensure_ascii=False,
        )


def consolidate_names(
    spellings: Sequence[tuple[str, int]],
    *,
    merge: Mapping[str, str] | None = None,
    separate: Sequence[str] = (),
    keep_apart: bool = False,
    exempt: re.Pattern[str] | None = None,
) -> NameConsolidation:
    """Group the distinct spellings of one contest (with their votes) into candidates.

    ``merge`` maps a spelling to the candidate it must join (given by any spelling of it or a
    new name); ``separate`` spellings keep their own identity; ``keep_apart`` turns merging off
    (identity = :func:`plain_identity`, the rule before consolidation). Spellings are compared
    by :func:`plain_identity`. Identities matching ``exempt`` (write-in lines, ``Other``) are
    never merged. The identity of a merged group is its key.
    """
    votes: dict[str, int] = {}
    shown: dict[str, str] = {}
    exact: dict[str, dict[str, int]] = {}
    for spelling, count in spellings:
        plain = plain_identity(spelling)
        votes[plain] = votes.get(plain, 0) + int(count)
        shown.setdefault(plain, spelling.strip())
        variants = exact.setdefault(plain, {})
        variants[spelling.strip()] = variants.get(spelling.strip(), 0) + int(count)
    forced = {plain_identity(k): v for k, v in (merge or {}).items()}
    apart = {plain_identity(s) for s in separate}
    identity: dict[str, str] = {}
    reasons: dict[str, str] = {}
    keys: dict[str, tuple[str, bool]] = {}
    for plain in votes:
        if exempt is not None and exempt.search(plain):
            identity[plain] = plain
            reasons[plain] = "not a person"
        elif keep_apart or plain in apart:
            identity[plain] = plain
            reasons[plain] = "kept apart"
        elif plain in forced:
            target = plain_identity(forced[plain])
            key = identity.get(target) or name_key(forced[plain])[0]
            identity[plain] = key
            reasons[plain] = f"forced into {forced[plain]!r}"
        else:
            keys[plain] = name_key(shown[plain])
    for plain, (key, _) in keys.items():
        identity[plain] = key
        reasons[plain] = "same key"
    # Forced targets given as a spelling of the file join that spelling's group.
    for plain, target in forced.items():
        target_plain = plain_identity(target)
        if plain in identity and target_plain in identity and target_plain != plain:
            identity[plain] = identity[target_plain]
    full = {k for k, single in keys.values() if not single}
    full |= {identity[p] for p in forced if p in identity}
    by_surname: dict[str, list[str]] = {}
    for key in sorted(full):
        by_surname.setdefault(key.split()[-1], []).append(key)
    warnings: list[str] = []
    for plain, (key, single) in keys.items():
        if not single:
            continue
        owners = by_surname.get(key, [])
        if len(owners) == 1:
            identity[plain] = owners[0]
            reasons[plain] = "surname only"
        elif len(owners) > 1:
            warnings.append(
                f"{shown[plain]!r} ({votes[plain]:,} votes) names only a surname shared by "
                f"{len(owners)} candidates ({', '.join(repr(o) for o in owners)}): not merged"
            )
    members: dict[str, list[str]] = {}
    for plain, key in identity.items():
        members.setdefault(key, []).append(plain)
    groups = tuple(
        NameGroup(
            key=key,
            spellings=tuple(
                sorted(
                    ((e, v) for p in plains for e, v in exact[p].items()),
                    key=lambda sv: (-sv[1], sv[0]),
                )
            ),
            reasons={e: reasons[p] for p in plains for e in exact[p]},
        )
        for key, plains in members.items()
    )
    # Persons sharing a surname with different first names: maybe one candidate, not merged.
    person_groups = [g for g in groups if any(keys.get(plain_identity(s)) for s, _ in g.spellings)]
    surnames: dict[str, list[NameGroup]] = {}
    for group in person_groups:
        if " " in group.key:
            surnames.setdefault(group.key.split()[-1], []).append(group)
    for surname, same in sorted(surnames.items()):
        if len(same) > 1:
            listed = ", ".join(
                f"{g.spellings[0][0]!r} ({g.votes:,})" for g in sorted(same, key=lambda g: -g.votes)
            )
            warnings.append(
                f"candidates sharing the surname {surname!r} were not merged (different first "
                f"names): {listed}; force a merge with option merge='SPELLING=CANDIDATE'"
            )
    return NameConsolidation(identity=identity, groups=groups, warnings=tuple(warnings))
