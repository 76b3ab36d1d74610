"""Kernel functions compiled without Numba's reference counting (``jit_options.LEAF``, ``_nrt`` off) must not
hand an array to their caller: a caller that counts references would release an array it was never given a
reference to. Numba itself refuses an allocation in such a function, not a returned view of an argument; this
test checks every such function compiled for the reference case (kernels/jit_options.py)."""

import os
import subprocess
import sys
import textwrap

CHECK = textwrap.dedent("""
    import importlib, pkgutil, warnings
    from numba.core import types
    import recoilsim.kernels as K
    from recoilsim.forward.simulate import simulate
    from recoilsim.model.experiment import reference_experiment
    from recoilsim.model.sample import Profile
    warnings.simplefilter("ignore")
    exp = reference_experiment(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio"))
    exp.options.scattered_beam = True
    simulate(exp)

    def has_array(t):
        if isinstance(t, (types.Array, types.List, types.ListType, types.DictType)):
            return True
        return isinstance(t, types.BaseTuple) and any(has_array(x) for x in t.types)

    n, bad = 0, []
    for m in pkgutil.iter_modules(K.__path__):
        mod = importlib.import_module("recoilsim.kernels." + m.name)
        for name, f in vars(mod).items():
            if getattr(f, "targetoptions", {}).get("_nrt") is False and getattr(f, "__module__", "") == mod.__name__:
                for cres in f.overloads.values():
                    n += 1
                    if has_array(cres.signature.return_type):
                        bad.append(f"{m.name}.{name}{cres.signature}")
    print(n, bad)
""")


def test_no_function_without_reference_counting_returns_an_array(tmp_path):
    # an empty cache: every function is compiled here (a cached callee has no overloads in the process)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), RECOILSIM_COLD_START="0")
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    n, bad = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(n) >= 25, out.stdout  # the LEAF functions were compiled in this process (28 of them, some twice)
    assert bad == "[]", bad
