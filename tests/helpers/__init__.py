"""Helpers shared by the test folders (imported as ``tests.helpers.<module>``, never through a conftest).

* :mod:`tests.helpers.shared` — the ``../shared`` reference data: where it is, and skipping (or, under
  CI / ``--require-reference``, failing) when it is missing.
* :mod:`tests.helpers.reference` — loading the official OccWorld fixtures and comparing tensors.
* :mod:`tests.helpers.recordings` — tiny synthetic recordings in the documented layout.
* :mod:`tests.helpers.tiny_runs` — the entry-point scripts in a subprocess and a tiny trained world model.
"""
