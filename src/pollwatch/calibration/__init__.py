"""Calibration: false-positive rates, power and stress tests of the methods; imports results,
forensics and synthetic, never cli/web.

The elections it measures on come from :mod:`pollwatch.synthetic` (the clean simulator and the
manipulation injectors, :data:`~pollwatch.synthetic.injectors.INJECTORS`), so that a method's
false-positive rate on clean elections and its power on manipulated ones can be measured
against labels. The injector seam is re-exported here for existing imports.
"""

from pollwatch.synthetic.injectors import INJECTORS, Injector, Labels, compose

__all__ = ["INJECTORS", "Injector", "Labels", "compose"]
