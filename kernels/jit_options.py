"""Numba options shared by the kernels.

``INTERNAL``: for compiled functions that only other compiled kernels call (never Python).
Numba builds two wrappers for every compiled function by default, one that Python can call
(unboxing each argument from a Python object) and a C-callable one; a function called only from
compiled code needs neither. Leaving them out (the ``no_cpython_wrapper`` and
``no_cfunc_wrapper`` options of ``numba.njit``) shortens a cold compile of the brick kernel
(benchmarks/README.md, "Session 5, kernel restructure"). Calling such a function from Python
raises an error, so a function that tests or the Python layer call keeps the default wrappers.
"""

INTERNAL = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}
