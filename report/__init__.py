"""The report's machinery, one module per concern, each importing only those before it:

    timing          where the time goes: named phases, recorded when $A2_PROFILE is set
    configurations  the report's settings (full or quick) and its named configurations
    experiments     the run cache, parallel runs and their progress, the scikit-learn cross-check
    analysis        seed statistics, comparisons, Markdown tables, diagnostics
    plots           every figure (matplotlib Figures, no pyplot state)
    explorer        the hidden-unit explorer widget
    execute         running the notebook for make report, with progress in the terminal

The engine, ``helpers.py``, imports nothing of this package.
"""

import helpers  # noqa: F401,E402  (first: it pins OpenBLAS's and NumPy's kernels before NumPy loads)
