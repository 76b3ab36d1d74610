"""Numba options shared by the brick kernel's functions.

``INTERNAL``: for compiled functions that only other compiled kernels call (never Python).
Numba builds two wrappers for every compiled function by default, one that Python can call
(unboxing each argument from a Python object) and a C-callable one; a function called only from
compiled code needs neither. Leaving them out (the ``no_cpython_wrapper`` and
``no_cfunc_wrapper`` options of ``numba.njit``) shortens a cold compile of the brick kernel.
Calling such a function from Python raises an error, so a function that tests or the Python
layer call keeps the default wrappers.

``error_model="numpy"`` (``INTERNAL`` and :func:`bricks.simulate_bricks`): a floating-point
division does not test its divisor for zero to raise ``ZeroDivisionError`` (Python's rule, Numba's
default) but gives IEEE inf or NaN, as numpy does; the same quotients otherwise. Without a test
and a raising branch per division the kernel is smaller and ~9 % faster
(benchmarks/README.md, "Session 5, kernel restructure"); a non-finite brick is refused by
``recoilsim.forward.engine.run``.

``LEAF``: ``INTERNAL`` compiled without Numba's reference counting (Numba's ``_nrt`` option off),
for the brick kernel's functions that create no array, only read and write arrays their caller
holds. With it on, a function increments the reference count of each array argument on entry and
decrements it at every exit, an atomic (``lock``-prefixed) memory operation each, unless Numba's
pruning pass finds the pair removable (not across a call, not with several exits): one run of the
reference case made ~134,000 of them (``cross_cell`` and ``range_cell`` ~80,000), ~4,300 with
``LEAF``, and the kernel is ~8 % faster on the Intel box (benchmarks/README.md, "Session 12,
kernel"). The caller keeps its arrays alive across the call, so the counts are not needed. Numba
refuses to compile an array allocation in such a function (``np.zeros`` does not type without
``_nrt``). The callees of a ``LEAF`` function inherit its setting unless they set their own, so a
function that both such a function and Python (or other compiled code) call sets ``_nrt=False``
itself, or Numba compiles it twice.
"""

INTERNAL = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True, "error_model": "numpy"}

LEAF = {**INTERNAL, "_nrt": False}
