"""Conformance with the real ttnn 0.81.1 (no device needed): every ttnn call of the lowered programs bound through
the real bindings, and the reference's host conversions compared bit for bit with ttnn's.

``calls.py`` serializes the call lists (3.11 side), ``sideenv.py`` makes the CPython 3.12 side environment with the
real wheel and talks to ``side/ttnn_side.py`` (3.12 side, no torch), ``numerics.py`` holds the conversion cases,
``report.py`` runs it all and tabulates.  Command line: ``fx2ttnn conformance``.
"""
