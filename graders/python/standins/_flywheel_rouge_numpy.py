"""What rouge-score takes from numpy, for the grader sandbox (numpy is native code with no WASI
build). library.py rewrites rouge-score's `import numpy as np` to import this module instead,
so no other code sees it: `import numpy` still fails, naming the package table.

`RougeScorer.score_multi` uses `np.argmax` over a list of floats, given here in pure Python
with numpy's tie rule (the first maximum). Everything else, `scoring.BootstrapAggregator`'s
resampling, raises ModuleNotFoundError naming numpy when it is called.
"""

DOCS = "docs/python-graders.md"


def argmax(values):
    values = list(values)
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    if not values:
        raise ValueError("attempt to get argmax of an empty sequence")
    return best


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ModuleNotFoundError(
        "No module named 'numpy' in the grader sandbox: rouge_score needs numpy.%s here, and "
        "the package 'numpy' is not bundled (native code with no WASI build; see the package "
        "table in %s)" % (name, DOCS),
        name="numpy",
    )
