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
"""

INTERNAL = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True, "error_model": "numpy"}
