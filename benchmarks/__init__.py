"""LesionFlow's benchmarks: measurements, not tests (``make bench``, ``make bench-quick``; docs/benchmarks.md).

Each part is a small module with a ``run(quick)`` returning plain data, so that ``report`` can write the document and
a test can run the quick mode's cheapest parts:

- ``preprocess``: the pipeline's preprocessing per model contract against the source systems' ways and the decode floor;
- ``cold_start``: each function's import and initialisation in a fresh process, against a naive all-imports handler;
- ``end_to_end``: uploads through the local stack, counting what a bill counts;
- ``cost``: those counts times public prices (``prices.json``), Standard versus Express versus one Lambda.
"""
