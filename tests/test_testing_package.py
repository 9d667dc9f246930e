"""``pollwatch.testing`` catches what it promises: toy plug-ins that break one rule each.

A well-behaved toy method, importer and injector pass every check; each broken toy below breaks
one rule of the contract, and the check that must catch it does (the others are not run on
it, so the test names exactly which check carries which rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
)
from pollwatch.forensics.parameters import Constraint, Interval
from pollwatch.forensics.sections import Headline, MethodDetails, Section, StationRanking
from pollwatch.results.importers.base import IMPORTERS, Example
from pollwatch.results.importers.openelections import OpenElectionsImporter
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.injectors import INJECTORS, Labels, VoteTransfer
from pollwatch.testing import (
    Check,
    Skipped,
    check_importer,
    check_injector,
    check_method,
    importer_checks,
    injector_checks,
    method_checks,
    parametrize_with_checks,
    run_checks,
)


def one(checks: Any, name: str) -> Check:
    """The check called ``name`` among ``checks``."""
    found = [check for check in checks if check.name == name]
    assert len(found) == 1, f"no single check {name!r} in {[c.name for c in checks]}"
    return found[0]


def catches(checks: Any, name: str, match: str) -> None:
    """The check ``name`` fails with an AssertionError matching ``match``."""
    with pytest.raises(AssertionError, match=match):
        one(list(checks), name)()


# --- methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LastDigit(Method):
    """Toy: the mean last digit of the leader's counts against uniform digits (Monte Carlo).

    Statistic: mean of ``count mod 10`` over the stations where the leader has at least
    ``minimum_count`` votes; p-value: share of ``replicates`` samples of as many uniform digits
    whose mean is at least as far from 4.5.
    """

    name: ClassVar[str] = "toy-last-digit"
    title: ClassVar[str] = "Toy last-digit mean"
    reference: ClassVar[str] = "a toy for pollwatch.testing's own tests, not a published method"
    stochastic: ClassVar[bool] = True
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"replicates": 199}
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "minimum_count": Interval(int, 10, None),
        "replicates": Interval(int, 1, None),
        "seed": Interval(int, 0, None),
    }

    minimum_count: int = 100
    replicates: int = 999
    seed: int = 0

    def counts(self, election: Election) -> np.ndarray:
        leader = election.leader()
        if leader is None:
            raise MethodNotApplicable(f"election {election.id!r} has no candidates")
        frame = eligible_stations(election, require=self.needs).stations
        frame = frame.filter(pl.col(leader.column) >= self.minimum_count)
        return frame[leader.column].to_numpy().astype(np.int64)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def run(self, election: Election) -> MethodResult:
        counts = self.counts(election)
        if counts.size == 0:
            raise MethodNotApplicable(f"election {election.id!r}: no count of {self.minimum_count}")
        mean = float((counts % 10).mean())
        simulated = self.rng().integers(0, 10, (self.replicates, counts.size)).mean(axis=1)
        beyond = int((np.abs(simulated - 4.5) >= abs(mean - 4.5) - 1e-12).sum())
        p_value = (1 + beyond) / (self.replicates + 1)
        return self.result(
            election,
            statistic_name="mean last digit",
            statistic=mean,
            sample_size=int(counts.size),
            p_value=p_value,
            p_value_floor=1 / (self.replicates + 1),
            alpha=0.05,
            significant=p_value < 0.05,
            effect_name="mean last digit - 4.5",
            effect=mean - 4.5,
            details={"votes": int(counts.sum()), "simulated_mean": float(simulated.mean())},
            charts={"digits": {"$schema": "https://vega.github.io/schema/vega-lite/v5.json"}},
        )


def test_the_well_behaved_toy_method_passes_every_check() -> None:
    assert check_method(LastDigit) == ()


def test_a_check_that_does_not_apply_is_returned_as_skipped() -> None:
    @dataclass(frozen=True)
    class NoPValue(LastDigit):
        name: ClassVar[str] = "toy-no-p-value"

        def run(self, election: Election) -> MethodResult:
            result = super().run(election)
            return MethodResult.from_dict({**result.to_dict(), "p_value": None})

    reason = "toy-no-p-value reports no p-value"
    skipped = Skipped("toy-no-p-value-clean_elections_are_not_systematically_flagged", reason)
    assert check_method(NoPValue) == (skipped,)


@dataclass(frozen=True)
class UnrecordedSeed(LastDigit):
    name: ClassVar[str] = "toy-unrecorded-seed"

    def parameters(self) -> dict[str, Any]:
        return {k: v for k, v in super().parameters().items() if k != "seed"}


@dataclass(frozen=True)
class UnrecordedParameter(LastDigit):
    name: ClassVar[str] = "toy-unrecorded-parameter"
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"replicates": 199, "minimum_count": 50}

    def parameters(self) -> dict[str, Any]:
        return {k: v for k, v in super().parameters().items() if k != "minimum_count"}


def test_clone_catches_a_result_that_does_not_record_its_seed() -> None:
    one(method_checks(UnrecordedParameter), "same_seed_same_result")()  # passes: not its rule
    catches(method_checks(UnrecordedSeed), "clone", "not reproduced from result.parameters")
    catches(method_checks(UnrecordedParameter), "clone", "not reproduced from result.parameters")


@dataclass(frozen=True)
class Unseeded(LastDigit):
    """Draws from a fresh, unseeded stream (the simulated mean in the details then differs)."""

    name: ClassVar[str] = "toy-unseeded"

    def rng(self) -> np.random.Generator:
        return np.random.default_rng()


def test_same_seed_catches_an_unseeded_generator() -> None:
    catches(method_checks(Unseeded), "same_seed_same_result", "two runs with the same seed")


@dataclass(frozen=True)
class FirstRows(LastDigit):
    name: ClassVar[str] = "toy-first-rows"

    def counts(self, election: Election) -> np.ndarray:
        return super().counts(election)[:300]


def test_row_order_catches_a_method_that_reads_the_first_rows() -> None:
    catches(method_checks(FirstRows), "row_order_does_not_matter", "order of the stations")


@dataclass(frozen=True)
class BadChart(LastDigit):
    name: ClassVar[str] = "toy-bad-chart"

    def run(self, election: Election) -> MethodResult:
        result = super().run(election)
        return MethodResult.from_dict({**result.to_dict(), "charts": {"d": {"mark": "bar"}}})


def test_json_and_renderings_catch_a_chart_that_is_not_vega_lite() -> None:
    catches(method_checks(BadChart), "json_round_trip_and_renderings", "not a Vega-Lite")


@dataclass(frozen=True)
class HeadlessSections(LastDigit):
    name: ClassVar[str] = "toy-headless-sections"

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        return tuple(s for s in super().sections(result) if not isinstance(s, Headline))


@dataclass(frozen=True)
class LossyDetails(LastDigit):
    """Declares a station ranking, but its results carry one the typed view rewrites."""

    name: ClassVar[str] = "toy-lossy-details"
    detail_type: ClassVar[type[MethodDetails] | None] = StationRanking

    def run(self, election: Election) -> MethodResult:
        result = super().run(election)
        ranked = [{"station_id": "S1", "score": 1.0, "reasons": ["x"], "unexpected": 1}]
        return MethodResult.from_dict({**result.to_dict(), "details": {"ranked": ranked}})


def test_sections_catch_a_missing_headline_and_details_the_typed_view_rewrites() -> None:
    catches(method_checks(HeadlessSections), "sections_and_details", "must begin with a Headline")
    catches(method_checks(LossyDetails), "sections_and_details", "change what they read")


@dataclass(frozen=True)
class RefusesZeroTurnout(LastDigit):
    name: ClassVar[str] = "toy-refuses-zero-turnout"

    def run(self, election: Election) -> MethodResult:
        if (election.stations["ballots_cast"] == 0).any():
            raise MethodNotApplicable("some station has no ballots")
        return super().run(election)


@dataclass(frozen=True)
class CountsTooMany(LastDigit):
    name: ClassVar[str] = "toy-counts-too-many"

    def run(self, election: Election) -> MethodResult:
        result = super().run(election)
        return MethodResult.from_dict({**result.to_dict(), "sample_size": len(election) + 1})


def test_edge_stations_catch_a_refusal_and_a_sample_larger_than_the_election() -> None:
    catches(method_checks(RefusesZeroTurnout), "edge_stations_are_handled", "refused an elect")
    catches(method_checks(CountsTooMany), "edge_stations_are_handled", "sample_size 601")


@dataclass(frozen=True)
class ClaimsRegistered(LastDigit):
    """Says it needs registered voters, but runs without them."""

    name: ClassVar[str] = "toy-claims-registered"
    needs: ClassVar[tuple[str, ...]] = ("registered",)

    def counts(self, election: Election) -> np.ndarray:
        # the mistake: no ``require`` in the station selection, so nothing refuses
        leader = election.leader()
        assert leader is not None
        frame = eligible_stations(election).stations
        frame = frame.filter(pl.col(leader.column) >= self.minimum_count)
        return frame[leader.column].to_numpy().astype(np.int64)


@dataclass(frozen=True)
class HiddenNeed(LastDigit):
    """Uses registered voters without saying so in ``needs``."""

    name: ClassVar[str] = "toy-hidden-need"

    def counts(self, election: Election) -> np.ndarray:
        eligible_stations(election, require=("registered",))
        return super().counts(election)


@dataclass(frozen=True)
class EmptyResult(LastDigit):
    """Returns a result on no station where it should refuse."""

    name: ClassVar[str] = "toy-empty-result"

    def run(self, election: Election) -> MethodResult:
        result = super().run(election)
        if election.stations["registered"].null_count() == len(election):
            return MethodResult.from_dict({**result.to_dict(), "sample_size": 0})
        return result


def test_no_registered_voters_asserts_in_every_branch() -> None:
    catches(method_checks(ClaimsRegistered), "no_registered_voters", "ran without them")
    catches(method_checks(HiddenNeed), "no_registered_voters", "do not say it needs them")
    catches(method_checks(EmptyResult), "no_registered_voters", "on no station")
    one(method_checks(LastDigit), "no_registered_voters")()  # a result, on stations


@dataclass(frozen=True)
class AlwaysSignificant(LastDigit):
    name: ClassVar[str] = "toy-always-significant"

    def run(self, election: Election) -> MethodResult:
        result = super().run(election)
        return MethodResult.from_dict({**result.to_dict(), "p_value": 0.001})


def test_clean_elections_catch_a_method_that_always_flags() -> None:
    catches(
        method_checks(AlwaysSignificant),
        "clean_elections_are_not_systematically_flagged",
        "on 12 of 12",
    )


@dataclass(frozen=True)
class NoReference(LastDigit):
    name: ClassVar[str] = "toy-no-reference"
    reference: ClassVar[str] = " "


@dataclass(frozen=True)
class FastIsNotABool(LastDigit):
    name: ClassVar[str] = "toy-fast-not-bool"
    fast: ClassVar[bool] = 1  # type: ignore[assignment]


@dataclass(frozen=True)
class UnknownSuiteParameter(LastDigit):
    name: ClassVar[str] = "toy-unknown-suite-parameter"
    suite_parameters: ClassVar[Mapping[str, Any]] = {"bootstrap": 50}


@dataclass(frozen=True)
class UnknownColumn(LastDigit):
    name: ClassVar[str] = "toy-unknown-column"
    needs: ClassVar[tuple[str, ...]] = ("turnout_percent",)


class Undecorated(LastDigit):
    """Adds a parameter without ``@dataclass``: ``window`` is a class attribute."""

    name: ClassVar[str] = "toy-undecorated"
    window: float = 0.1


def test_class_attributes_catch_each_broken_attribute() -> None:
    catches(method_checks(NoReference), "class_attributes", "reference is missing or empty")
    catches(method_checks(FastIsNotABool), "class_attributes", "fast must be True or False")
    catches(method_checks(UnknownSuiteParameter), "class_attributes", r"\['bootstrap'\]")
    catches(method_checks(UnknownColumn), "class_attributes", "turnout_percent")
    catches(method_checks(Undecorated), "class_attributes", r"annotated \['window'\]")


def test_class_attributes_catch_a_registration_under_another_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    METHODS.names()  # load the built-ins and entry points before adding to the registry
    with monkeypatch.context() as patch:
        patch.setitem(METHODS._items, "toy-other-name", LastDigit)
        catches(method_checks(LastDigit), "class_attributes", "registered as 'toy-other-name'")
    with monkeypatch.context() as patch:
        patch.setitem(METHODS._items, "toy-last-digit", UnrecordedSeed)
        catches(method_checks(LastDigit), "class_attributes", "registered to another class")


def test_class_attributes_catch_suite_parameters_that_fail_validation() -> None:
    @dataclass(frozen=True)
    class InvalidSuiteParameter(LastDigit):
        name: ClassVar[str] = "toy-invalid-suite-parameter"
        suite_parameters: ClassVar[Mapping[str, Any]] = {"replicates": -3}

    catches(
        method_checks(InvalidSuiteParameter),
        "class_attributes",
        "suite_parameters fail validation: .*parameter 'replicates'",
    )


def test_parameter_constraints_catch_a_missing_constraint_and_a_skipped_validation() -> None:
    @dataclass(frozen=True)
    class Unconstrained(LastDigit):
        name: ClassVar[str] = "toy-unconstrained"
        window: float = 0.1

    @dataclass(frozen=True)
    class Unvalidated(LastDigit):
        name: ClassVar[str] = "toy-unvalidated"

        def __post_init__(self) -> None:  # the mistake: no super().__post_init__()
            pass

    @dataclass(frozen=True)
    class BadDefault(LastDigit):
        name: ClassVar[str] = "toy-bad-default"
        minimum_count: int = 5  # its constraint says at least 10

    catches(method_checks(Unconstrained), "parameter_constraints", r"\['window'\]")
    catches(method_checks(Unvalidated), "parameter_constraints", "was accepted")
    catches(method_checks(BadDefault), "parameter_constraints", "default minimum_count=5")


# --- importers ----------------------------------------------------------------------------


class ToyImporter(OpenElectionsImporter):
    """Toy: the OpenElections importer under another name."""

    name: ClassVar[str] = "toy-importer"

    def read(
        self, path: Path, *, mapping: Path | None = None, options: Mapping[str, str] | None = None
    ) -> Election:
        election = super().read(path, mapping=mapping, options=options)
        return election.replace_meta(importer=self.name)


def test_the_well_behaved_toy_importer_passes_every_check() -> None:
    assert check_importer(ToyImporter) == ()


class DetectRaises(ToyImporter):
    def detect(self, path: Path) -> float:
        if path.stat().st_size == 0:
            raise ValueError("empty")
        return super().detect(path)


class ReadCrashesOnDamage(ToyImporter):
    """Decodes the file as UTF-8 without catching the error."""

    def read(self, path: Path, **kwargs: Any) -> Election:
        if path.is_file():
            path.read_bytes().decode("utf-8")
        return super().read(path, **kwargs)


class AcceptsAnything(ToyImporter):
    """Reads its own example whatever the path."""

    written: ClassVar[list[Path]] = []

    def example(self, folder: Path) -> Example:
        example = super().example(folder)
        self.written.append(example.path)
        return example

    def read(self, path: Path, **kwargs: Any) -> Election:
        return super().read(self.written[-1], **kwargs)


class WrongTotals(ToyImporter):
    def example(self, folder: Path) -> Example:
        example = super().example(folder)
        totals = {name: votes + 1 for name, votes in example.totals.items()}
        return Example(path=example.path, totals=totals, stations=example.stations)


class NotIdempotent(ToyImporter):
    reads: ClassVar[list[int]] = []

    def read(self, path: Path, **kwargs: Any) -> Election:
        self.reads.append(1)
        return super().read(path, **kwargs).replace_meta(source=f"read {len(self.reads)}")


class BlindDetect(ToyImporter):
    def detect(self, path: Path) -> float:
        return 0.2


def test_importer_checks_catch_each_broken_rule() -> None:
    catches(importer_checks(DetectRaises), "garbage_gives_clean_errors", "detect raised ValueErr")
    catches(
        importer_checks(ReadCrashesOnDamage),
        "damaged_example_never_tracebacks",
        "raised UnicodeDecodeError, not a PollwatchError",
    )
    catches(
        importer_checks(ReadCrashesOnDamage), "random_bytes_never_traceback", "UnicodeDecodeError"
    )
    catches(importer_checks(AcceptsAnything), "garbage_gives_clean_errors", "accepted the garbage")
    catches(importer_checks(WrongTotals), "example_reads_to_its_totals", "are not the example's")
    catches(importer_checks(NotIdempotent), "read_is_idempotent", "different metadata")
    catches(importer_checks(BlindDetect), "detect_recognises_own_example", "detect gives 0.2")


def test_importer_class_attributes_catch_a_misregistration(monkeypatch: pytest.MonkeyPatch) -> None:
    IMPORTERS.names()
    monkeypatch.setitem(IMPORTERS._items, "toy-other", ToyImporter)
    catches(importer_checks(ToyImporter), "class_attributes", "registered as 'toy-other'")


# --- injectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToyTransfer(VoteTransfer):
    """Toy: vote transfer under another name."""

    name: ClassVar[str] = "toy-transfer"


def test_the_well_behaved_toy_injector_passes_every_check() -> None:
    assert check_injector(ToyTransfer) == ()


@dataclass(frozen=True)
class TouchesOthers(ToyTransfer):
    """Also rewrites an unlabelled station's invalid count (and share 0 still changes it)."""

    def apply(self, election: Election, rng: np.random.Generator) -> tuple[Election, Labels]:
        after, labels = super().apply(election, rng)
        others = sorted(set(election.stations["station_id"]) - set(labels.stations))
        frame = after.stations.with_columns(
            pl.when(pl.col("station_id") == others[0])
            .then(pl.col("valid") - 1)
            .otherwise(pl.col("valid"))
            .alias("valid")
        )
        return make_election(after.meta, frame), labels


@dataclass(frozen=True)
class RowOrdered(ToyTransfer):
    """Draws from the eligible stations in row order instead of station_id order."""

    def eligible_station_ids(self, election: Election) -> list[str]:
        keep = set(super().eligible_station_ids(election))
        return [s for s in election.stations["station_id"].to_list() if s in keep]


@dataclass(frozen=True)
class SkipsFirstStation(ToyTransfer):
    def eligible_station_ids(self, election: Election) -> list[str]:
        return super().eligible_station_ids(election)[1:]


@dataclass(frozen=True)
class BreaksProtocol(ToyTransfer):
    """Adds votes for the leader without adding them to ``valid``."""

    def apply(self, election: Election, rng: np.random.Generator) -> tuple[Election, Labels]:
        after, labels = super().apply(election, rng)
        leader = election.leader()
        assert leader is not None
        column = pl.col(leader.column)
        hit = pl.col("station_id").is_in(list(labels.stations))
        frame = after.stations.with_columns(
            pl.when(hit).then(column + 5).otherwise(column).alias(leader.column)
        )
        return make_election(after.meta, frame), labels


@dataclass(frozen=True)
class NoRangeCheck(ToyTransfer):
    def __post_init__(self) -> None:  # the mistake: no validation at all
        pass


@dataclass(frozen=True)
class CalibratesOutOfRange(ToyTransfer):
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.5, 0.7, 2.0)


def test_injector_checks_catch_each_broken_rule() -> None:
    catches(injector_checks(TouchesOthers), "only_labelled_stations_change", "not labelled")
    catches(injector_checks(TouchesOthers), "share_zero_changes_nothing", "changes the stations")
    catches(
        injector_checks(RowOrdered),
        "same_seed_same_result_and_row_order_free",
        "depend on the row order",
    )
    catches(
        injector_checks(SkipsFirstStation),
        "station_count_is_rounded_share_of_eligible",
        "1499 of 1500",
    )
    catches(
        injector_checks(BreaksProtocol), "protocol_checks_have_no_new_failures", "breaks protocol"
    )
    catches(injector_checks(NoRangeCheck), "out_of_range_parameters_are_named", "was accepted")
    catches(injector_checks(CalibratesOutOfRange), "class_attributes", "magnitude 2.0 out of")


# --- running checks -----------------------------------------------------------------------


def test_check_method_names_the_failing_check() -> None:
    with pytest.raises(AssertionError, match="toy-unseeded: check 'same_seed_same_result'"):
        check_method(Unseeded)


def test_run_checks_turns_an_error_into_a_failure_naming_the_check() -> None:
    def broken() -> None:
        raise KeyError("x")

    with pytest.raises(AssertionError, match="toy: check 'boom' failed with KeyError"):
        run_checks([Check("toy", "boom", broken)])


def test_parametrize_with_checks_gives_one_test_per_check() -> None:
    mark = parametrize_with_checks([LastDigit, ToyImporter, ToyTransfer])
    assert mark.args[0] == "check"
    ids = mark.kwargs["ids"]
    assert "toy-last-digit-clone" in ids
    assert "toy-importer-random_bytes_never_traceback" in ids
    assert "toy-transfer-share_zero_changes_nothing" in ids
    assert len(ids) == len(set(ids)) == 10 + 7 + 7
    with pytest.raises(TypeError, match="not a Method subclass"):
        parametrize_with_checks([object()])


def test_the_registries_are_untouched_by_the_toys() -> None:
    names = [*METHODS.names(), *IMPORTERS.names(), *INJECTORS.names()]
    assert not [name for name in names if name.startswith("toy-")]
