"""The playback policy: deny by default, first match wins, who/what/where/when, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pollwatch.cli import main
from pollwatch.errors import PolicyError
from pollwatch.video.accounts import ANONYMOUS, User
from pollwatch.video.policy import PlaybackRequest, Policy

LAWYER = User("lena", "lawyer")
COMMISSION = User("carl", "commission")
ADMIN = User("root", "admin")
ANALYST = User("ana", "analyst")
OBSERVER = User("olga", "observer", regions=("north",), stations=("S-77",))

EXAMPLE = """\
version = 1

[election]
close = 2026-11-29T20:00:00Z

[networks]
national = ["192.0.2.0/24", "2001:db8::/32"]
office = ["198.51.100.0/28"]

[regions]
north = ["N-*"]
south = ["S-*"]

[proxy]
trusted = ["127.0.0.1/32"]

[[rules]]
name = "court-national"
roles = ["lawyer", "commission"]
networks = ["national"]
effect = "allow"
copies = ["original", "blurred"]

[[rules]]
name = "court-abroad-blurred"
roles = ["lawyer", "commission"]
outside = ["national"]
effect = "allow"
copies = ["blurred"]

[[rules]]
name = "observers-own-region"
roles = ["observer"]
assigned = true
effect = "allow"
copies = ["blurred"]

[[rules]]
name = "no-foreign-public"
roles = ["*"]
outside = ["national"]
effect = "deny"

[[rules]]
name = "public-after-close"
roles = ["public", "analyst"]
regions = ["north", "south"]
from = "close"
until = "close+30d"
effect = "allow"
copies = ["blurred"]
"""

AFTER = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BEFORE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def ask(station: str, address: str | None, copy: str | None = None, when: datetime = AFTER):
    return PlaybackRequest(station=station, address=address, copy=copy, time=when)  # type: ignore[arg-type]


@pytest.fixture
def policy() -> Policy:
    return Policy.parse(EXAMPLE, source="example.toml")


def test_empty_policy_denies_everything() -> None:
    empty = Policy.parse("version = 1\n")
    for user in (ANONYMOUS, LAWYER, COMMISSION, ADMIN):
        decision = empty.decide(user, ask("N-1", "192.0.2.1"))
        assert not decision.allowed and decision.copy is None
        assert decision.rule == "default-deny"


def test_first_match_wins() -> None:
    text = """
[[rules]]
name = "deny-lena"
users = ["lena"]
effect = "deny"
[[rules]]
name = "lawyers"
roles = ["lawyer"]
effect = "allow"
copies = ["original"]
"""
    first = Policy.parse(text)
    assert first.decide(LAWYER, ask("X", "192.0.2.1")).rule == "deny-lena"
    assert first.decide(User("lou", "lawyer"), ask("X", "192.0.2.1")).allowed
    swapped = Policy.parse(
        text.replace('"deny-lena"', '"z"')
        .replace('"lawyers"', '"deny-lena"')
        .replace('"z"', '"lawyers"')
    )
    # same rules, names swapped: still the first in file order decides
    assert swapped.decide(LAWYER, ask("X", "192.0.2.1")).rule == "lawyers"


def test_cidr_allow_list_and_downgrade(policy: Policy) -> None:
    inside = policy.decide(LAWYER, ask("N-1", "192.0.2.17", "original"))
    assert inside.allowed and inside.copy == "original" and inside.rule == "court-national"
    v6 = policy.decide(COMMISSION, ask("N-1", "2001:db8::5"))
    assert v6.allowed and v6.copy == "original"
    abroad = policy.decide(LAWYER, ask("N-1", "203.0.113.9"))
    assert abroad.allowed and abroad.copy == "blurred" and abroad.rule == "court-abroad-blurred"
    abroad_original = policy.decide(LAWYER, ask("N-1", "203.0.113.9", "original"))
    assert not abroad_original.allowed and "only blurred" in abroad_original.reason
    # an address that is not an IP (e.g. a test client) is inside no network
    assert policy.decide(LAWYER, ask("N-1", "testclient")).rule == "court-abroad-blurred"
    assert policy.decide(ANONYMOUS, ask("N-1", "203.0.113.9")).rule == "no-foreign-public"


def test_observers_only_their_assignment(policy: Policy) -> None:
    own_region = policy.decide(OBSERVER, ask("N-5", "192.0.2.1"))
    assert own_region.allowed and own_region.copy == "blurred"
    own_station = policy.decide(OBSERVER, ask("S-77", "192.0.2.1"))
    assert own_station.allowed
    elsewhere = policy.decide(OBSERVER, ask("S-1", "192.0.2.1", when=AFTER))
    # not assigned: falls through to the general rules (the example has no observer deny)
    assert elsewhere.rule != "observers-own-region"
    assert policy.decide(OBSERVER, ask("S-1", "192.0.2.1", "original")).allowed is False


def test_time_window_relative_to_close(policy: Policy) -> None:
    assert policy.close == datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    before = policy.decide(ANONYMOUS, ask("N-1", "192.0.2.1", when=BEFORE))
    assert not before.allowed and before.rule == "default-deny"
    after = policy.decide(ANONYMOUS, ask("N-1", "192.0.2.1", when=AFTER))
    assert after.allowed and after.copy == "blurred" and after.rule == "public-after-close"
    late = policy.decide(ANONYMOUS, ask("N-1", "192.0.2.1", when=datetime(2027, 1, 1, tzinfo=UTC)))
    assert not late.allowed
    # a station in no region matches only regions = ["*"]
    unmapped = policy.decide(ANONYMOUS, ask("X-1", "192.0.2.1"))
    assert not unmapped.allowed


def test_regions_networks_and_explain(policy: Policy) -> None:
    assert policy.region_of("N-12") == "north" and policy.region_of("Q") is None
    assert policy.network_name("198.51.100.3") == "office"
    assert policy.network_name("8.8.8.8") is None
    assert [str(n) for n in policy.trusted_proxies] == ["127.0.0.1/32"]
    trace = policy.explain(ANONYMOUS, ask("N-1", "192.0.2.1"))
    assert [rule.name for rule, _ in trace] == [
        "court-national",
        "court-abroad-blurred",
        "observers-own-region",
        "no-foreign-public",
        "public-after-close",
    ]
    assert trace[-1][1] is None and all(why for _, why in trace[:-1])
    assert trace[0][0].line == EXAMPLE.splitlines().index("[[rules]]") + 1


def test_default_policy_as_documented() -> None:
    default = Policy.default()
    anywhere = "203.0.113.9"
    assert default.decide(ANONYMOUS, ask("N-1", anywhere)).copy == "blurred"
    assert not default.decide(ANONYMOUS, ask("N-1", anywhere, "original")).allowed
    assert not default.decide(ADMIN, ask("N-1", anywhere, "original")).allowed
    assert default.decide(ANALYST, ask("N-1", anywhere)).copy == "blurred"
    for court in (LAWYER, COMMISSION):
        assert default.decide(court, ask("N-1", anywhere)).copy == "original"
    assert default.decide(OBSERVER, ask("S-77", anywhere)).copy == "blurred"
    denied = default.decide(OBSERVER, ask("N-1", anywhere))
    assert not denied.allowed and denied.rule == "observers-elsewhere"


# (text to replace, replacement, the text of the line the error must name, key, what is wrong)
BROKEN = [
    (
        'copies = ["original", "blurred"]',
        'copies = ["original", "blured"]',
        "blured",
        "rules[1].copies",
        "'blured' is not a copy",
    ),
    ('roles = ["observer"]', 'roles = ["obsrver"]', "obsrver", "rules[3].roles", "unknown role"),
    (
        'outside = ["national"]\neffect = "deny"',
        'outside = ["nationl"]\neffect = "deny"',
        "nationl",
        "rules[4].outside",
        "neither a named network nor a CIDR",
    ),
    (
        'office = ["198.51.100.0/28"]',
        'office = ["198.51.100.1/28"]',
        "office",
        "networks.office",
        "not a network",
    ),
    ('until = "close+30d"', 'until = "close+30 weeks"', "weeks", "rules[5].until", "is not a time"),
    (
        'name = "court-abroad-blurred"',
        'name = "court-abroad-blurred"\ncolour = "red"',
        "colour",
        "rules[2].colour",
        "unknown key 'colour'",
    ),
    (
        'effect = "deny"',
        'effect = "deny"\ncopies = ["blurred", "original"]',
        '"blurred", "original"',
        "rules[4].copies",
        "takes no copies",
    ),
]


@pytest.mark.parametrize(("old", "new", "marker", "where", "what"), BROKEN)
def test_malformed_policy_names_the_line(
    tmp_path: Path, old: str, new: str, marker: str, where: str, what: str
) -> None:
    assert old in EXAMPLE
    text = EXAMPLE.replace(old, new, 1)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if marker in t)
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        Policy.load(path)
    message = caught.value.one_line()
    assert message.startswith(f"{path}, line {line}: {where}: ")
    assert what in message
    assert caught.value.hint  # says how to fix it
    assert "\n" not in message


def test_malformed_toml_and_missing_pieces(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"not valid TOML: .*line 3"):
        Policy.parse('version = 1\n[[rules]]\nname = "x\n', source="p.toml")
    with pytest.raises(PolicyError, match="relative to the close, but no close is set"):
        Policy.parse('[[rules]]\nroles=["*"]\nfrom="close"\neffect="deny"\n')
    with pytest.raises(PolicyError, match="says neither roles nor users"):
        Policy.parse('[[rules]]\neffect="deny"\n')
    with pytest.raises(PolicyError, match="must say which copies"):
        Policy.parse('[[rules]]\nroles=["*"]\neffect="allow"\n')
    with pytest.raises(PolicyError, match=r"line 2: rules\[1\].effect: effect must be"):
        Policy.parse('[[rules]]\neffect="permit"\nroles=["*"]\n', source="p.toml")
    with pytest.raises(PolicyError, match="used twice"):
        Policy.parse('[[rules]]\nname="a"\nroles=["*"]\neffect="deny"\n' * 2)
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.load(tmp_path / "absent.toml")


def test_cli_policy_check_and_explain(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert main(["video", "policy", "check", str(path)]) == 0
    assert "valid, 5 rules" in capsys.readouterr().out
    code = main(
        [
            "video",
            "policy",
            "explain",
            str(path),
            "--user",
            "anonymous",
            "--station",
            "N-1",
            "--address",
            "203.0.113.9",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rule_lines = [n for n, t in enumerate(EXAMPLE.splitlines(), 1) if t == "[[rules]]"]
    assert f"rule no-foreign-public (line {rule_lines[3]}): MATCHES" in out
    assert out.strip().splitlines()[-1].startswith("DENY")
    path.write_text(EXAMPLE.replace('"blurred"]', '"blured"]', 1), encoding="utf-8")
    assert main(["video", "policy", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rules[1].copies" in err and "Traceback" not in err


def test_documented_example_is_valid_and_its_error_line_is_true(tmp_path: Path) -> None:
    import re

    docs = Path(__file__).resolve().parents[2] / "docs" / "video-access.md"
    if not docs.is_file():
        pytest.skip("docs/video-access.md is not in this checkout")
    text = docs.read_text("utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    policy = Policy.parse(example.group(1), source="policy.toml")
    assert len(policy.rules) == 6 and policy.rules[0].name == "court-national"
    shown = re.search(r"^error: (policy\.toml, line .*)$", text, re.M)
    assert shown is not None
    with pytest.raises(PolicyError) as caught:
        Policy.parse(example.group(1).replace('"blurred"]', '"blured"]', 1), source="policy.toml")
    assert caught.value.one_line() == shown.group(1)
