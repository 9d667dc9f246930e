"""Method parameters: the constraint scheme, its one error shape, every built-in method on it."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pollwatch.forensics.base import Method, all_methods, get_method
from pollwatch.forensics.klimek import KlimekFingerprint, KlimekFraudModel
from pollwatch.forensics.parameters import (
    Boolean,
    Interval,
    NoneOr,
    Options,
    ParameterError,
    Text,
    TupleOf,
    assign_parameters,
    parse_assignments,
    validate_parameters,
)
from pollwatch.forensics.shpilkin import ShpilkinEstimate
from pollwatch.forensics.suite import run_suite
from pollwatch.synthetic.simulator import simulate_clean

METHODS = all_methods()


# --- Interval ---------------------------------------------------------------------------------
def test_bool_is_never_an_integer_nor_a_number() -> None:
    counts = Interval(int, 0, None)
    assert counts.is_satisfied_by(0) and counts.is_satisfied_by(np.int64(3))
    assert not counts.is_satisfied_by(True)
    assert not counts.is_satisfied_by(False)
    assert not counts.is_satisfied_by(np.bool_(True))
    assert not Interval(float, 0, 1).is_satisfied_by(True)


def test_integer_intervals_refuse_floats_and_number_intervals_take_integers() -> None:
    assert not Interval(int, 1, 10).is_satisfied_by(5.0)
    assert not Interval(int, 1, 10).is_satisfied_by("5")
    assert Interval(float, 0, 10).is_satisfied_by(5)
    assert Interval(float, 0, 10).is_satisfied_by(np.float64(2.5))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_never_satisfy_a_number_interval(value: float) -> None:
    assert not Interval(float, None, None).is_satisfied_by(value)
    assert not Interval(float, 0, None).is_satisfied_by(value)


@pytest.mark.parametrize(
    ("closed", "low_in", "high_in"),
    [
        ("both", True, True),
        ("left", True, False),
        ("right", False, True),
        ("neither", False, False),
    ],
)
def test_closed_says_which_ends_belong(closed: Any, low_in: bool, high_in: bool) -> None:
    interval = Interval(float, 0, 1, closed=closed)
    assert interval.is_satisfied_by(0) is low_in
    assert interval.is_satisfied_by(0.0) is low_in
    assert interval.is_satisfied_by(1) is high_in
    assert interval.is_satisfied_by(0.5)
    assert not interval.is_satisfied_by(-1e-12)
    assert not interval.is_satisfied_by(1 + 1e-12)


def test_unbounded_sides_take_any_size() -> None:
    assert Interval(int, None, 5).is_satisfied_by(-(10**12))
    assert not Interval(int, None, 5).is_satisfied_by(6)
    assert Interval(int, 5, None).is_satisfied_by(10**12)
    # with no bound on a side, closed has nothing to close there
    assert Interval(float, 0, None, closed="neither").is_satisfied_by(1e300)
    assert Interval(float, 0, None).is_satisfied_by(10**400)  # too large for a float, still finite


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (Interval(int, 1, None), "an integer >= 1"),
        (Interval(int, 10, 1000), "an integer from 10 to 1000"),
        (Interval(float, 0, 0.5, closed="right"), "a number > 0 and <= 0.5"),
        (Interval(float, 0, 1, closed="neither"), "a number > 0 and < 1"),
        (Interval(float, 0, 1, closed="left"), "a number >= 0 and < 1"),
        (Interval(float, None, 2.5), "a number <= 2.5"),
        (Interval(int, None, None), "an integer"),
        (Options("exact", "monte-carlo"), "one of 'exact', 'monte-carlo'"),
        (Boolean(), "true or false"),
        (Text(), "a non-empty text"),
        (NoneOr(Text()), "a non-empty text, or none"),
        (TupleOf(Interval(float, 0, 1)), "one or more values, each a number from 0 to 1"),
    ],
)
def test_constraints_describe_themselves(constraint: Any, words: str) -> None:
    assert constraint.describe() == words


@pytest.mark.parametrize(
    "constraint",
    [
        Interval(int, 1, None),
        Interval(int, 10, 1000),
        Interval(int, None, None),
        Interval(float, 0, 0.5, closed="right"),
        Interval(float, 0, 1, closed="neither"),
        Interval(float, 0, None),
        Options("exact", "monte-carlo"),
        Options(1, 2),
        Boolean(),
        Text(),
        NoneOr(Text()),
        NoneOr(Interval(int, 0, None)),
        TupleOf(Interval(float, 0, 0.05, closed="right")),
    ],
)
def test_every_invalid_example_breaks_its_constraint(constraint: Any) -> None:
    examples = constraint.invalid_examples()
    assert examples
    for value in examples:
        assert not constraint.is_satisfied_by(value), value


def test_invalid_examples_sit_on_and_beyond_the_ends() -> None:
    assert set(Interval(int, 10, 1000).invalid_examples()) >= {9, 1001}
    open_ends = Interval(float, 0, 1, closed="neither").invalid_examples()
    assert 0.0 in open_ends and 1.0 in open_ends
    assert True in Interval(int, 0, None).invalid_examples()
    assert any(
        isinstance(v, float) and math.isnan(v) for v in Interval(float, 0, 1).invalid_examples()
    )


def test_interval_refuses_a_meaningless_definition() -> None:
    with pytest.raises(TypeError):
        Interval(str, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Interval(int, 5, 1)
    with pytest.raises(ValueError):
        Interval(int, 0, 1, closed="open")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Interval(int, 0.5, 2)


# --- the other constraints --------------------------------------------------------------------
def test_options_match_value_and_type() -> None:
    assert Options("exact", "monte-carlo").is_satisfied_by("exact")
    assert not Options("exact", "monte-carlo").is_satisfied_by("Exact")
    assert not Options(1, 2).is_satisfied_by(True)
    assert Options(1, 2).parse("2") == 2
    with pytest.raises(ValueError):
        Options("exact").parse("approximate")


def test_boolean_is_a_real_bool_and_reads_the_usual_words() -> None:
    flag = Boolean()
    assert flag.is_satisfied_by(False)
    assert not flag.is_satisfied_by(1)
    assert not flag.is_satisfied_by("true")
    assert [flag.parse(w) for w in ("true", "Yes", "ON", "1")] == [True] * 4
    assert [flag.parse(w) for w in ("false", "no", "Off", "0")] == [False] * 4
    with pytest.raises(ValueError):
        flag.parse("maybe")


def test_text_none_or_and_tuple_of() -> None:
    assert Text().is_satisfied_by("leader")
    assert not Text().is_satisfied_by("  ")
    assert not Text().is_satisfied_by(3)
    optional = NoneOr(Text())
    assert optional.is_satisfied_by(None) and optional.is_satisfied_by("Putin")
    assert optional.parse("none") is None and optional.parse("NULL") is None
    assert optional.parse("Putin") == "Putin"
    assert None not in optional.invalid_examples()
    widths = TupleOf(Interval(float, 0, 0.05, closed="right"))
    assert widths.is_satisfied_by((0.005, 0.01)) and widths.is_satisfied_by([0.01])
    assert not widths.is_satisfied_by(())
    assert not widths.is_satisfied_by("0.01")
    assert not widths.is_satisfied_by((0.01, 0.1))
    assert widths.parse("0.005,0.01") == (0.005, 0.01)
    assert widths.parse("(0.005, 0.01)") == (0.005, 0.01)
    assert widths.normalise([0.01]) == (0.01,)
    assert TupleOf(Text(), min_length=0).is_satisfied_by(())


def test_parse_reads_the_type_only() -> None:
    assert Interval(int, 1, None).parse("50") == 50
    assert Interval(int, 1, None).parse(" 1_000 ") == 1000
    with pytest.raises(ValueError):
        Interval(int, 1, None).parse("5.0")
    with pytest.raises(ValueError):
        Interval(int, 1, None).parse("many")
    assert Interval(float, 0, 1).parse("1e-3") == 0.001
    assert isinstance(Interval(float, 0, 1).parse("1"), float)
    # out of range parses; the range is validation's question
    assert Interval(int, 1, None).parse("-3") == -3
    assert math.isnan(Interval(float, 0, 1).parse("nan"))


# --- validation and its one error shape -------------------------------------------------------
def test_a_bad_value_reads_the_same_for_every_method() -> None:
    with pytest.raises(ParameterError) as info:
        KlimekFraudModel(replicates=-3)
    error = info.value
    assert error.message == (
        "method 'klimek-fraud-model': parameter 'replicates' must be an integer from 0 to "
        "10000, got -3"
    )
    assert error.hint == "see `pollwatch methods klimek-fraud-model` for its parameters"
    assert (error.method, error.parameter) == ("klimek-fraud-model", "replicates")
    assert "\n" not in str(error)


def test_an_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ParameterError) as info:
        validate_parameters(KlimekFraudModel, {"replicate": 5})
    assert info.value.message == "method 'klimek-fraud-model': unknown parameter 'replicate'"
    assert info.value.hint is not None
    assert info.value.hint.startswith("did you mean 'replicates'? known: bins, alphas")
    with pytest.raises(ParameterError, match="unknown parameter 'replicate'"):
        get_method("klimek-fraud-model", replicate=5)


def test_validation_returns_the_values_as_stored() -> None:
    assert validate_parameters(KlimekFraudModel, {"alphas": [1.0, 2.0]}) == {"alphas": (1.0, 2.0)}
    assert KlimekFraudModel(alphas=[1.0, 2.0]).alphas == (1.0, 2.0)  # type: ignore[arg-type]
    assert ShpilkinEstimate(bin_widths=[0.01]).bin_widths == (0.01,)  # type: ignore[arg-type]
    assert hash(ShpilkinEstimate(bin_widths=[0.01]))  # type: ignore[arg-type]


def test_a_field_without_a_constraint_passes_unchecked() -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Loose(Method):
        name: ClassVar[str] = "loose"
        title: ClassVar[str] = "no constraints"
        reference: ClassVar[str] = "none"
        size: int = 3

        def run(self, election):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    assert Loose(size=-1).size == -1
    with pytest.raises(ParameterError, match="unknown parameter 'sise'"):
        validate_parameters(Loose, {"sise": 1})
    with pytest.raises(ParameterError, match="declares no constraint"):
        parse_assignments(Loose, ["size=4"])


# --- every built-in method ----------------------------------------------------------------------
def _invalid_cases() -> list[Any]:
    cases = []
    for name, cls in METHODS:
        for field in fields(cls):  # type: ignore[arg-type]
            constraint = cls.parameter_constraints[field.name]
            for value in constraint.invalid_examples():
                case_id = f"{name}-{field.name}-{value!r}"
                cases.append(pytest.param(cls, field.name, value, id=case_id))
    return cases


def test_every_built_in_method_declares_a_constraint_per_parameter() -> None:
    for name, cls in METHODS:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        assert set(cls.parameter_constraints) == names, name
        for field in fields(cls):  # type: ignore[arg-type]
            assert cls.parameter_constraints[field.name].is_satisfied_by(field.default), (
                name,
                field.name,
            )


@pytest.mark.parametrize(("cls", "parameter", "value"), _invalid_cases())
def test_every_built_in_method_refuses_each_invalid_example_by_name(
    cls: type[Method], parameter: str, value: Any
) -> None:
    with pytest.raises(ParameterError) as info:
        cls(**{**cls.conformance_parameters, parameter: value})
    assert info.value.method == cls.name
    assert info.value.parameter == parameter
    assert f"method {cls.name!r}: parameter {parameter!r} must be " in info.value.message


@pytest.mark.parametrize(
    ("cls", "values", "parameter"),
    [
        (KlimekFraudModel, {"alpha_min": 2.0, "alpha_max": 1.0, "alphas": (1.5,)}, "alpha_max"),
        (KlimekFraudModel, {"alphas": (20.0,)}, "alphas"),
        (KlimekFraudModel, {"f_e_step": 0.2, "f_e_max": 0.1}, "f_e_max"),
        (ShpilkinEstimate, {"bin_widths": (0.003,)}, "bin_widths"),
    ],
)
def test_rules_between_parameters_read_like_the_others(
    cls: type[Method], values: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ParameterError) as info:
        cls(**values)
    assert info.value.parameter == parameter
    assert info.value.message.startswith(f"method {cls.name!r}: parameter {parameter!r} must be ")


# --- text assignments (-p KEY=VALUE) ------------------------------------------------------------
def test_assignments_are_parsed_by_their_constraints() -> None:
    values = parse_assignments(
        KlimekFraudModel,
        ["replicates=50", "alphas=1,2.5", "widen_alphas=no", "candidate=none", "seed=7"],
    )
    assert values == {
        "replicates": 50,
        "alphas": (1.0, 2.5),
        "widen_alphas": False,
        "candidate": None,
        "seed": 7,
    }
    assert parse_assignments(KlimekFraudModel, ["seed=1", "seed=2"]) == {"seed": 2}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("replicates=-3", "parameter 'replicates' must be an integer from 0 to 10000, got -3"),
        ("replicates=abc", "parameter 'replicates' must be an integer from 0 to 10000, got 'abc'"),
        ("interval_level=nan", "parameter 'interval_level' must be a number > 0 and < 1, got nan"),
        ("widen_alphas=2", "parameter 'widen_alphas' must be true or false, got '2'"),
        ("bootstrap=50", "unknown parameter 'bootstrap'"),
        ("replicates", "'replicates' is not KEY=VALUE"),
        ("=5", "'=5' is not KEY=VALUE"),
    ],
)
def test_bad_assignments_are_one_parameter_error(assignment: str, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_assignments(KlimekFraudModel, [assignment])
    assert info.value.message == f"method 'klimek-fraud-model': {message}"


def test_plain_keys_reach_every_selected_method_that_takes_them() -> None:
    selected = {"klimek-fingerprint": KlimekFingerprint, "klimek-fraud-model": KlimekFraudModel}
    values = assign_parameters(selected, ["bins=60", "klimek-fraud-model.bins=40", "seed=3"])
    assert values == {
        "klimek-fingerprint": {"bins": 60},
        "klimek-fraud-model": {"bins": 40, "seed": 3},
    }
    assert assign_parameters(selected, []) == {}


def test_keys_no_selected_method_takes_are_refused() -> None:
    selected = {"klimek-fingerprint": KlimekFingerprint, "shpilkin": ShpilkinEstimate}
    with pytest.raises(ParameterError, match=r"none of the selected methods .* 'replicates'"):
        assign_parameters(selected, ["replicates=5"])
    with pytest.raises(ParameterError, match="unknown parameter 'replicates'"):
        assign_parameters({"shpilkin": ShpilkinEstimate}, ["replicates=5"])
    with pytest.raises(ParameterError, match="method 'triage' is not among the methods selected"):
        assign_parameters(selected, ["triage.top=5"])
    with pytest.raises(ParameterError, match="must be an integer from 10 to 1000, got 5"):
        assign_parameters(selected, ["klimek-fingerprint.bins=5"])


# --- run_suite ----------------------------------------------------------------------------------
def test_run_suite_overrides_change_the_result_and_the_cache_key(tmp_path: Path) -> None:
    election = simulate_clean(stations=400, regions=3, seed=2, election_id="params-suite")
    cache = tmp_path / "analysis"
    wider = {"integer-shares": {"window": 0.5}}
    plain = run_suite(election, ["integer-shares"], cache_dir=cache)
    changed = run_suite(election, ["integer-shares"], parameters=wider, cache_dir=cache)
    default, wide = plain.results[0], changed.results[0]
    assert default.parameters["window"] == 0.05 and wide.parameters["window"] == 0.5
    # a window ten times wider holds many more stations (the exact null: no randomness)
    assert wide.statistic is not None and default.statistic is not None
    assert wide.statistic > 3 * default.statistic
    assert len(list((cache / election.id).glob("integer-shares-*.json"))) == 2
    again = run_suite(election, ["integer-shares"], parameters=wider, cache_dir=cache)
    assert again.results[0].statistic == wide.statistic
    assert len(list((cache / election.id).glob("integer-shares-*.json"))) == 2


def test_run_suite_refuses_bad_overrides_before_running(tmp_path: Path) -> None:
    election = simulate_clean(stations=200, regions=2, seed=3, election_id="params-refused")
    cache = tmp_path / "analysis"
    with pytest.raises(ParameterError, match="which is not run"):
        run_suite(election, ["shpilkin"], parameters={"triage": {"top": 5}}, cache_dir=cache)
    with pytest.raises(ParameterError, match="parameter 'top' must be an integer >= 1, got 0"):
        run_suite(
            election, ["shpilkin", "triage"], parameters={"triage": {"top": 0}}, cache_dir=cache
        )
    with pytest.raises(ParameterError, match="parameter 'bin_widths' must be widths that divide"):
        run_suite(
            election,
            ["triage", "shpilkin"],
            parameters={"shpilkin": {"bin_widths": (0.003,)}},
            cache_dir=cache,
        )
    assert not (cache / election.id).exists()  # nothing ran, nothing was cached
