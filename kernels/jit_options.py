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
for the kernel's functions that allocate no array and return none, only read and write arrays their
caller holds. With it on, such a function increments and decrements the reference count of each
array argument on every call, an atomic (``lock``-prefixed) memory operation each, unless Numba's
pruning pass finds the pair removable (it does not across a call or where the function has several
exits): ``cross_cell`` and ``range_cell`` alone did ~80,000 of the ~134,000 per run of the
reference case, and the brick kernel spent ~28 % of its time in them on the Intel box
(benchmarks/README.md, "Session 12, kernel"). The caller keeps its arrays alive across the call,
so the counts are not needed. A function compiled with ``LEAF`` must not create an array (no
``np.empty``, no slice or view kept): Numba compiles that too, but nothing would free it. The
callees of a ``LEAF`` function inherit its option unless they set their own, so every function such
a function calls is ``LEAF`` (or inlined) as well, or Numba compiles it a second time.
"""

INTERNAL = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True, "error_model": "numpy"}

LEAF = {**INTERNAL, "_nrt": False}
