"""Calibration: synthetic manipulation, false-positive rates and power; imports results and
forensics, never cli/web.

:mod:`pollwatch.calibration.injectors` plants known manipulations in an election (one seam,
:data:`~pollwatch.calibration.injectors.INJECTORS`), so that a method's false-positive rate on
clean elections and its power on manipulated ones can be measured against labels;
:mod:`pollwatch.calibration.planted` saves such an election in the store with its labels
(``pollwatch simulate --inject``, ``pollwatch demo``).
"""

from pollwatch.calibration.injectors import INJECTORS, Injector, Labels, compose

__all__ = ["INJECTORS", "Injector", "Labels", "compose"]
