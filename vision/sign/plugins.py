"""Imports the SONAR-SLT modules that register model types and corpus builders (the ``polyglot_suite.plugins``
entry point). Each module added to the family that registers something is imported here."""

from vision.sign import hub  # noqa: F401
