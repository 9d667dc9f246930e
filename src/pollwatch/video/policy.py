"""The playback policy: a declarative TOML file saying who may watch what, from where, when.

A policy is an ordered list of rules. Each rule names *who* (roles, user names), *what*
(station and region patterns, or only the user's assigned stations and regions), *where* (the
client address must lie in, or outside, named networks or CIDR ranges) and *when* (a window of
viewing time, absolute or relative to the election's close), and an ``effect``: ``allow`` (with
the ``copies`` it may serve, original and/or blurred) or ``deny``. The first rule that matches
decides; when none matches the request is denied (deny by default).

The station -> region map comes from the policy file's ``[regions]`` table (region name -> list
of station patterns, first match in file order); a station that no pattern covers has no region,
and only a ``regions = ["*"]`` rule matches it.

The full schema with an example is in ``docs/video-access.md``; :data:`DEFAULT_POLICY` is what
applies when ``<home>/video/policy.toml`` does not exist. Every mistake in a policy file raises
:class:`~pollwatch.errors.PolicyError` with the file, the line, the key, what is wrong and how to
fix it.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pollwatch.errors import PolicyError
from pollwatch.settings import Settings

from .accounts import ROLES, User

__all__ = [
    "COPIES",
    "DEFAULT_POLICY",
    "Decision",
    "PlaybackRequest",
    "Policy",
    "Rule",
    "load_policy",
]

#: The copies of a segment that can be served.
COPIES = ("original", "blurred")

#: The name of the policy file inside ``Settings.video_dir``.
POLICY_FILE = "policy.toml"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The policy in force when ``<home>/video/policy.toml`` does not exist (see docs/video-access.md).
DEFAULT_POLICY = """\
# pollwatch default playback policy: first matching rule wins, deny by default.
version = 1

[[rules]]
name = "court-and-commission"
# Originals only for the court (lawyer) and the election commission.
roles = ["lawyer", "commission"]
effect = "allow"
copies = ["original", "blurred"]

[[rules]]
name = "observers-assigned"
# Observers watch the stations and regions they are assigned to, blurred.
roles = ["observer"]
assigned = true
effect = "allow"
copies = ["blurred"]

[[rules]]
name = "observers-elsewhere"
# An observer account is for its assignment: elsewhere it is denied (it is accountable).
roles = ["observer"]
effect = "deny"

[[rules]]
name = "everyone-blurred"
# The public (anonymous visitors), analysts and admins see blurred copies only: managing
# accounts does not entitle anyone to originals.
roles = ["public", "analyst", "admin"]
effect = "allow"
copies = ["blurred"]
"""

_TOP_KEYS = {"version", "election", "networks", "regions", "proxy", "rules"}
_RULE_KEYS = {
    "name",
    "roles",
    "users",
    "stations",
    "regions",
    "assigned",
    "networks",
    "outside",
    "from",
    "until",
    "effect",
    "copies",
}
_RELATIVE = re.compile(r"^close\s*(?:([+-])\s*(\d+)\s*([mhd]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class PlaybackRequest:
    """What is asked: a station's footage, from an address, a copy (None: the best allowed)."""

    station: str
    address: str | None
    copy: Literal["original", "blurred"] | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """The policy's answer: allowed or not, which copy, the deciding rule and why in words."""

    allowed: bool
    copy: Literal["original", "blurred"] | None
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "copy": self.copy,
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Rule:
    """One policy rule (see the module docstring); ``line`` is where it starts in its file."""

    name: str
    effect: Literal["allow", "deny"]
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    stations: tuple[str, ...] = ("*",)
    regions: tuple[str, ...] = ("*",)
    assigned: bool = False
    networks: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    start: datetime | None = None
    until: datetime | None = None
    copies: tuple[Literal["original", "blurred"], ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class Policy:
    """A parsed policy: rules in order, named networks, the station -> region map."""

    rules: tuple[Rule, ...]
    networks: Mapping[str, tuple[Network, ...]] = field(default_factory=dict)
    regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    trusted_proxies: tuple[Network, ...] = ()
    close: datetime | None = None
    source: str = "<default policy>"

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Policy:
        """Parse and validate a policy file; PolicyError (one line) when anything is wrong."""
        path = Path(path)
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(
                f"{path}: not UTF-8 text", hint="save the policy file as UTF-8"
            ) from None
        except OSError as exc:
            raise PolicyError(
                f"cannot read the policy file {path} ({exc.strerror})",
                hint="give the path of a TOML policy file (see docs/video-access.md)",
            ) from None
        return cls.parse(text, source=str(path))

    @classmethod
    def default(cls) -> Policy:
        """The built-in :data:`DEFAULT_POLICY`."""
        return cls.parse(DEFAULT_POLICY, source="<default policy>")

    @classmethod
    def parse(cls, text: str, *, source: str = "<policy>") -> Policy:
        """Parse policy TOML text; ``source`` names it in error messages."""
        return _Parser(text, source).policy()

    # --- questions -----------------------------------------------------------------------
    def region_of(self, station: str) -> str | None:
        """The station's region from ``[regions]`` (first pattern that matches), or None."""
        for region, patterns in self.regions.items():
            if any(fnmatchcase(station, pattern) for pattern in patterns):
                return region
        return None

    def network_name(self, address: str | None) -> str | None:
        """The first named network (``[networks]``) that holds the address, or None."""
        parsed = _address(address)
        if parsed is None:
            return None
        for name, ranges in self.networks.items():
            if any(parsed in network for network in ranges):
                return name
        return None

    def decide(self, user: User, request: PlaybackRequest) -> Decision:
        """The first matching rule's answer; a deny (rule ``default-deny``) when none matches."""
        for rule in self.rules:
            if _mismatch(self, rule, user, request) is None:
                return _apply(rule, request)
        return Decision(
            allowed=False,
            copy=None,
            rule="default-deny",
            reason="no rule matches this user, station, address and time: denied by default",
        )

    def explain(self, user: User, request: PlaybackRequest) -> list[tuple[Rule, str | None]]:
        """Each rule up to the deciding one, with why it did not match (None for the match)."""
        trace: list[tuple[Rule, str | None]] = []
        for rule in self.rules:
            why = _mismatch(self, rule, user, request)
            trace.append((rule, why))
            if why is None:
                break
        return trace


def load_policy(settings: Settings) -> Policy:
    """The policy in force: ``<home>/video/policy.toml`` when it exists, else the default."""
    path = settings.video_dir / POLICY_FILE
    return Policy.load(path) if path.is_file() else Policy.default()


# --- matching --------------------------------------------------------------------------------
def _address(value: str | None) -> Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None


def _in_any(policy: Policy, address: Address | None, names: Sequence[str]) -> bool:
    if address is None:
        return False
    for name in names:
        ranges = policy.networks.get(name)
        if ranges is None:
            ranges = (ipaddress.ip_network(name, strict=False),)
        if any(address in network for network in ranges):
            return True
    return False


def _mismatch(policy: Policy, rule: Rule, user: User, request: PlaybackRequest) -> str | None:
    """Why the rule does not match the request (None when it does)."""
    if not ("*" in rule.roles or user.role in rule.roles or user.name in rule.users):
        return f"user {user.name!r} (role {user.role}) is not among its roles/users"
    if not any(fnmatchcase(request.station, pattern) for pattern in rule.stations):
        return f"station {request.station!r} matches none of {list(rule.stations)}"
    region = policy.region_of(request.station)
    if not any(
        pattern == "*" or (region is not None and fnmatchcase(region, pattern))
        for pattern in rule.regions
    ):
        return f"region {region!r} matches none of {list(rule.regions)}"
    if rule.assigned and not (
        request.station in user.stations or (region is not None and region in user.regions)
    ):
        return f"station {request.station!r} (region {region!r}) is not assigned to {user.name!r}"
    address = _address(request.address)
    if rule.networks and not _in_any(policy, address, rule.networks):
        return f"address {request.address!r} is in none of {list(rule.networks)}"
    if rule.outside and _in_any(policy, address, rule.outside):
        return f"address {request.address!r} is inside {list(rule.outside)}"
    moment = request.time or datetime.now(UTC)
    if rule.start is not None and moment < rule.start:
        return f"the time {moment:%Y-%m-%dT%H:%M:%SZ} is before the rule's window"
    if rule.until is not None and moment >= rule.until:
        return f"the time {moment:%Y-%m-%dT%H:%M:%SZ} is after the rule's window"
    return None


def _apply(rule: Rule, request: PlaybackRequest) -> Decision:
    if rule.effect == "deny":
        return Decision(False, None, rule.name, f"rule {rule.name!r} denies this request")
    if request.copy is None:
        best: Literal["original", "blurred"] = (
            "original" if "original" in rule.copies else "blurred"
        )
        return Decision(True, best, rule.name, f"rule {rule.name!r} allows {best} copies")
    if request.copy in rule.copies:
        return Decision(
            True, request.copy, rule.name, f"rule {rule.name!r} allows {request.copy} copies"
        )
    allowed = " and ".join(rule.copies)
    return Decision(
        False,
        None,
        rule.name,
        f"rule {rule.name!r} allows only {allowed} copies, not {request.copy}",
    )


# --- parsing ---------------------------------------------------------------------------------
class _Parser:
    """Validates the TOML document and names the line of every mistake."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.lines = text.splitlines()

    def fail(
        self,
        message: str,
        hint: str,
        *,
        section: str | None = None,
        rule: int | None = None,
        key: str | None = None,
    ) -> PolicyError:
        line = self._locate(section, rule, key)
        where = f"{self.source}, line {line}" if line else self.source
        if rule is not None:
            label = f"rules[{rule + 1}]" + (f".{key}" if key else "")
        elif section is not None:
            label = section + (f".{key}" if key else "")
        else:
            label = key or ""
        return PolicyError(
            f"{where}: {label}: {message}" if label else f"{where}: {message}", hint=hint
        )

    def refuse_unknown_keys(
        self,
        table: Mapping[str, Any],
        known: Collection[str],
        takes: str,
        *,
        rule: int | None = None,
    ) -> None:
        """Fail on the first key of ``table`` not in ``known``; the hint is ``takes`` + the keys."""
        for key in table:
            if key not in known:
                raise self.fail(
                    f"unknown key {key!r}",
                    f"{takes} {', '.join(sorted(known))}",
                    rule=rule,
                    key=key,
                )

    def _locate(self, section: str | None, rule: int | None, key: str | None) -> int | None:
        """The 1-based line of a key (in a table, in the n-th ``[[rules]]``, or top-level)."""
        start = 0
        if rule is not None or section is not None:
            if rule is not None:
                header = re.compile(r"^\s*\[\[\s*rules\s*\]\]")
            else:
                header = re.compile(rf"^\s*\[\s*{re.escape(section or '')}\s*\]")
            seen = -1
            found = None
            for number, line in enumerate(self.lines):
                if header.match(line):
                    seen += 1
                    if rule is None or seen == rule:
                        found = number
                        break
            if found is None:
                return None
            if key is None:
                return found + 1
            start = found + 1
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key or '')}[\"']?\s*=")
        for number in range(start, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[number]):
                break
            if pattern.match(self.lines[number]):
                return number + 1
        return start if start else None

    def policy(self) -> Policy:
        try:
            document = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(
                f"{self.source}: not valid TOML: {exc}",
                hint="fix the syntax at that line (see docs/video-access.md for an example)",
            ) from None
        self.refuse_unknown_keys(document, _TOP_KEYS, "top-level keys are")
        version = document.get("version", 1)
        if version != 1:
            raise self.fail(f"unsupported version {version!r}", "use version = 1", key="version")
        close = self._close(document.get("election", {}))
        networks = self._networks(document.get("networks", {}))
        regions = self._regions(document.get("regions", {}))
        proxy = document.get("proxy", {})
        if not isinstance(proxy, dict) or set(proxy) - {"trusted"}:
            raise self.fail(
                "must be a table with the one key 'trusted'",
                'write [proxy] trusted = ["127.0.0.1/32"]',
                section="proxy",
            )
        trusted = tuple(
            self._cidr(value, section="proxy", key="trusted")
            for value in self._strings(proxy.get("trusted", []), section="proxy", key="trusted")
        )
        raw_rules = document.get("rules", [])
        if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
            raise self.fail(
                "rules must be an array of tables",
                "write each rule under its own [[rules]]",
                key="rules",
            )
        rules = tuple(
            self._rule(number, raw, networks, close) for number, raw in enumerate(raw_rules)
        )
        names = [rule.name for rule in rules]
        for number, name in enumerate(names):
            if names.index(name) != number:
                raise self.fail(
                    f"rule name {name!r} is used twice",
                    "give every rule its own name (the custody log records it)",
                    rule=number,
                    key="name",
                )
        return Policy(
            rules=rules,
            networks=networks,
            regions=regions,
            trusted_proxies=trusted,
            close=close,
            source=self.source,
        )

    def _strings(
        self, value: Any, *, section: str | None = None, rule: int | None = None, key: str
    ) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(
                f"must be a list of non-empty strings, not {value!r}",
                f'write {key} = ["..."]',
                section=section,
                rule=rule,
                key=key,
            )
        return list(value)

    def _cidr(
        self, value: str, *, section: str | None = None, rule: int | None = None, key: str
    ) -> Network:
        try:
            return ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise self.fail(
                f"{value!r} is not a network ({exc})",
                'write an address range in CIDR form, e.g. "192.0.2.0/24" or "2001:db8::/32"',
                section=section,
                rule=rule,
                key=key,
            ) from None

    def _close(self, table: Any) -> datetime | None:
        if not isinstance(table, dict) or set(table) - {"close"}:
            raise self.fail(
                "must be a table with the one key 'close'",
                "write [election] close = 2026-11-29T20:00:00Z",
                section="election",
            )
        if "close" not in table:
            return None
        return self._datetime(table["close"], section="election", key="close")

    def _datetime(
        self, value: Any, *, section: str | None = None, rule: int | None = None, key: str
    ) -> datetime:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC)
        raise self.fail(
            f"{value!r} is not a date and time with a UTC offset",
            "write a TOML date-time such as 2026-11-29T20:00:00Z (unquoted, with Z or +hh:mm)",
            section=section,
            rule=rule,
            key=key,
        )

    def _networks(self, table: Any) -> dict[str, tuple[Network, ...]]:
        if not isinstance(table, dict):
            raise self.fail(
                "must be a table of name = [CIDR ranges]",
                'write [networks] national = ["192.0.2.0/24"]',
                key="networks",
            )
        result: dict[str, tuple[Network, ...]] = {}
        for name, ranges in table.items():
            values = self._strings(ranges, section="networks", key=name)
            result[name] = tuple(self._cidr(v, section="networks", key=name) for v in values)
        return result

    def _regions(self, table: Any) -> dict[str, tuple[str, ...]]:
        if not isinstance(table, dict):
            raise self.fail(
                "must be a table of region = [station patterns]",
                'write [regions] north = ["N-*"]',
                key="regions",
            )
        return {
            name: tuple(self._strings(patterns, section="regions", key=name))
            for name, patterns in table.items()
        }

    def _window(self, value: Any, close: datetime | None, number: int, key: str) -> datetime:
        if isinstance(value, str):
            match = _RELATIVE.match(value.strip())
            if match is None:
                raise self.fail(
                    f"{value!r} is not a time",
                    'write a date-time (2026-11-29T20:00:00Z) or "close", "close+72h", '
                    '"close-30m", "close+7d"',
                    rule=number,
                    key=key,
                )
            if close is None:
                raise self.fail(
                    f"{value!r} is relative to the close, but no close is set",
                    "add [election] close = 2026-11-29T20:00:00Z to the policy",
                    rule=number,
                    key=key,
                )
            sign, amount, unit = match.groups()
            if amount is None:
                return close
            delta = timedelta(**{_UNITS[unit]: int(amount)})
            return close + delta if sign == "+" else close - delta
        return self._datetime(value, rule=number, key=key)

    def _rule(
        self,
        number: int,
        raw: dict[str, Any],
        networks: Mapping[str, tuple[Network, ...]],
        close: datetime | None,
    ) -> Rule:
        self.refuse_unknown_keys(raw, _RULE_KEYS, "a rule takes", rule=number)
        name = raw.get("name", f"rule-{number + 1}")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
            raise self.fail(
                f"{name!r} is not a rule name",
                "use letters, digits, '.', '_' and '-'",
                rule=number,
                key="name",
            )
        effect = raw.get("effect")
        if effect not in ("allow", "deny"):
            raise self.fail(
                f"effect must be 'allow' or 'deny', not {effect!r}",
                'add effect = "allow" or effect = "deny"',
                rule=number,
                key="effect" if "effect" in raw else None,
            )
        roles = tuple(self._strings(raw.get("roles", []), rule=number, key="roles"))
        for role in roles:
            if role != "*" and role not in ROLES:
                raise self.fail(
                    f"unknown role {role!r}",
                    f'roles are {", ".join(ROLES)}, or "*" for everyone',
                    rule=number,
                    key="roles",
                )
        users = tuple(self._strings(raw.get("users", []), rule=number, key="users"))
        if not roles and not users:
            raise self.fail(
                "says neither roles nor users: whom does it apply to?",
                'add roles = ["..."] or users = ["..."] (roles = ["*"] for everyone)',
                rule=number,
            )
        stations = tuple(self._strings(raw.get("stations", ["*"]), rule=number, key="stations"))
        regions = tuple(self._strings(raw.get("regions", ["*"]), rule=number, key="regions"))
        assigned = raw.get("assigned", False)
        if not isinstance(assigned, bool):
            raise self.fail(
                f"assigned must be true or false, not {assigned!r}",
                "write assigned = true (only the user's assigned stations and regions)",
                rule=number,
                key="assigned",
            )
        where: dict[str, tuple[str, ...]] = {}
        for key in ("networks", "outside"):
            values = tuple(self._strings(raw.get(key, []), rule=number, key=key))
            for value in values:
                if value not in networks:
                    try:
                        ipaddress.ip_network(value, strict=True)
                    except ValueError:
                        known = ", ".join(networks) or "none defined"
                        raise self.fail(
                            f"{value!r} is neither a named network nor a CIDR range",
                            f'named networks: {known}; or write a range such as "192.0.2.0/24"',
                            rule=number,
                            key=key,
                        ) from None
            where[key] = values
        start = self._window(raw["from"], close, number, "from") if "from" in raw else None
        until = self._window(raw["until"], close, number, "until") if "until" in raw else None
        if start is not None and until is not None and until <= start:
            raise self.fail(
                "the window ends before it starts",
                "make 'until' later than 'from'",
                rule=number,
                key="until",
            )
        copies: tuple[Literal["original", "blurred"], ...] = ()
        if effect == "allow":
            asked = self._strings(raw.get("copies", []), rule=number, key="copies")
            if not asked:
                raise self.fail(
                    "an allow rule must say which copies it serves",
                    'add copies = ["blurred"] or copies = ["original", "blurred"]',
                    rule=number,
                    key="copies" if "copies" in raw else None,
                )
            for value in asked:
                if value not in COPIES:
                    raise self.fail(
                        f"{value!r} is not a copy",
                        'copies are "original" and "blurred"',
                        rule=number,
                        key="copies",
                    )
            copies = tuple(v for v in ("original", "blurred") if v in asked)
        elif "copies" in raw:
            raise self.fail(
                "a deny rule serves nothing, so it takes no copies",
                "remove 'copies' from the deny rule",
                rule=number,
                key="copies",
            )
        return Rule(
            name=name,
            effect=effect,
            roles=roles,
            users=users,
            stations=stations,
            regions=regions,
            assigned=assigned,
            networks=where["networks"],
            outside=where["outside"],
            start=start,
            until=until,
            copies=copies,
            line=self._locate(None, number, None),
        )
