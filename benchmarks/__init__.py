"""Performance benchmarks of the sync engine and the pages that read its history.

Run them with ``python -m benchmarks`` (see ``benchmarks/__main__.py``); the figures and their
targets are written to ``docs/PERFORMANCE.md``.
"""
