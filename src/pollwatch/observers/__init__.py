"""Observers: the work of observer organisations on election day and after.

Organisations deploy observers to polling stations; observers fill checklists (XLSForm forms) and
report incidents from a phone, online or offline, from ODK Collect or by coded SMS; several
observers' submissions for one station merge into a master record whose conflicts a coordinator
resolves; the organisation's quality rules flag submissions; media go into the evidence archive
as they arrive; observers' copies of the precinct protocols are compared line by line with the
official results; a quick count (parallel vote tabulation) estimates the result from a random
sample of stations. See ``docs/observers.md``.
"""
