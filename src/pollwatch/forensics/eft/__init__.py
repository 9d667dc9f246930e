"""The Election Forensics Toolkit tests (Mebane, Kalinin et al.), one method per test.

Source: Walter R. Mebane, Jr., Kirill Kalinin et al., *Election Forensics Toolkit*
(USAID / University of Michigan, 2015), and its R package EFToolkit
(github.com/kkalininMI/EFToolkit, ``BasicElectionForensics``), which this module follows:

==================  ====================================================================  ========
method              statistic                                                             expected
==================  ====================================================================  ========
``eft-2bl``         mean second significant digit of counts of at least 10 votes          4.187
``eft-lastc``       mean last digit of counts                                             4.5
``eft-c05s``        share of counts whose last digit is 0 or 5                            0.2
``eft-p05s``        share of percentages (rounded to whole percent) ending in 0 or 5      0.2
``eft-skew``        skewness m3 / m2^1.5 of turnout (or a vote share)                     descr.
``eft-kurt``        kurtosis m4 / m2^2 (normal = 3) of turnout (or a vote share)          descr.
``eft-dip``         Hartigan's dip test of unimodality of turnout (or a vote share)       p-value
``eft-sobyanin``    slope of the leader's votes / registered on turnout, minus the        0
                    leader's mean share of ballots (Sobyanin & Sukhovolsky 1995)
``eft-correlation`` Pearson correlation of turnout and the leader's vote share            0
==================  ====================================================================  ========

4.187 is the mean of Benford's second-digit law, P(d) = sum_k log10(1 + 1/(10k + d)).

Inference. EFT reports each statistic with a nonparametric bootstrap "basic" interval
(resampling polling stations) and colours a cell when the interval excludes the expected value.
pollwatch gives the same bootstrap interval (``replicates``, ``seed``, ``level``) and adds a
p-value where a calibrated one exists: for LastC, C05s and P05s a z-test of the mean against
its expectation with the sample standard deviation (station-clustered when several counts per
station are pooled); for the Sobyanin slope a z-test with the bootstrap standard error; for the
correlation Pearson's t-test; for the dip test the tabulated p-value of the ``diptest`` package
(as R's ``dip.test``). 2BL, skewness and kurtosis are descriptive (interval, no p-value; 2BL's
z-test against 4.187 is a detail, see the pitfalls). With ``by_region=True`` each test also
runs in every region, and Benjamini-Hochberg q-values across regions say which regions stand
out at ``alpha`` (``details["regions"]``, ``details["flagged_regions"]``).

Definition choices (pollwatch):

* digit tests use one candidate's counts, the election's leader by default (EFT tabulates every
  candidate; all of them are in ``details["series"]``, with ``ballots_cast`` as EFT's
  "Turnout" row); ``candidate="all"`` pools every candidate's counts;
* LastC and C05s leave out counts below ``minimum_count`` (default 10) because a one-digit
  count's last digit is the count itself; ``minimum_count=0`` reproduces EFT, which keeps all;
* percentages are ``100 * votes / valid`` (pollwatch's vote share; EFT divides by ballots
  cast) and ``100 * turnout``, rounded half to even as R's ``round``;
* turnout is ``ballots_cast / registered``; stations with ``ballots_cast > registered`` are
  left out (EFT caps turnout at 1).

Known pitfalls. The digit tests' expectations hold only for counts spread over many tens of
votes. Benford's law is not a law of vote counts (Deckert, Myagkov & Ordeshook 2011, Political
Analysis 19(3)): binomial counts at stations of similar size miss 4.187 in 7 of the conformance
suite's 12 simulated clean elections, hence no 2BL p-value; Mebane reads 2BL departures as signs
of strategic behaviour as much as of manipulation. Minor candidates' counts and percentages are
small and fail every digit test in honest elections. Skewness, kurtosis, multimodality, slope
and correlation all respond to honest heterogeneity between regions (urban and rural turnout,
regional parties): compare regions (``by_region``) and elections before reading any of them as
an anomaly. With ~100,000 stations every departure, however small, is "significant"; read the
effect and its interval.

The family is split by kind, one module each: :mod:`~pollwatch.forensics.eft.digit_tests` (2BL,
LastC, C05s, P05s), :mod:`~pollwatch.forensics.eft.moments` (skewness, kurtosis),
:mod:`~pollwatch.forensics.eft.dip` (the dip test) and
:mod:`~pollwatch.forensics.eft.turnout_share` (Sobyanin slope, correlation), on the shared
:mod:`~pollwatch.forensics.eft._base` (bootstrap, charts, region tables, base classes). A test's
calibration cells are keyed by its own module and ``_base`` (plus ``forensics/base.py``), so
changing one kind leaves the other kinds' cells valid.
"""

from pollwatch.forensics.eft._base import (
    BENFORD_SECOND_DIGIT_MEAN,
    EFT_REFERENCE,
    MINIMUM_REGION_STATIONS,
)
from pollwatch.forensics.eft.digit_tests import (
    EFTLastDigit,
    EFTPercent05,
    EFTSecondDigit,
    EFTZeroFive,
)
from pollwatch.forensics.eft.dip import EFTDip, dip_test
from pollwatch.forensics.eft.moments import EFTKurtosis, EFTSkewness
from pollwatch.forensics.eft.turnout_share import EFTCorrelation, EFTSobyanin

__all__ = [
    "BENFORD_SECOND_DIGIT_MEAN",
    "EFT_REFERENCE",
    "MINIMUM_REGION_STATIONS",
    "EFTCorrelation",
    "EFTDip",
    "EFTKurtosis",
    "EFTLastDigit",
    "EFTPercent05",
    "EFTSecondDigit",
    "EFTSkewness",
    "EFTSobyanin",
    "EFTZeroFive",
    "dip_test",
]
