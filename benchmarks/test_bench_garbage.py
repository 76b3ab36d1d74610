"""Every reader on 2 GB of garbage (issue 15 item 5): budget 5 s and 200 MB per reader.

Two 2 GB files that cost almost no disk: all NUL bytes (a sparse file), and 4 MiB of random text
lines followed by a sparse hole (every reader must fail inside the text; reading on would reach
the NUL bytes of the hole). Each reader is timed with pytest-benchmark (it must raise
RecoilsimError every round) and its peak of Python/numpy allocations is measured once with
tracemalloc (numpy reports its buffers to it). The budgets are asserted here; the medians go to
``bench.json``.

Measured (shared 2-core sandbox, 2026-12-01): slowest read_asc, 0.08 s (NUL) and 0.17 s (text),
peak 34 MB (its first 8 MiB chunk); every other reader < 0.03 s and < 17 MB (most refuse on the
size or the first bytes, < 1 ms).
"""

import random
import tracemalloc
from pathlib import Path

import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.io.atomic import read_netcdf
from recoilsim.io.experiment_file import load_experiment, load_file
from recoilsim.io.idf import read_idf
from recoilsim.io.potku_events import read_asc
from recoilsim.io.potku_selections import read_cut, read_cuts, read_sel
from recoilsim.io.potku_settings import read_potku_settings
from recoilsim.io.spectra import read_spectra, read_spectrum
from recoilsim.io.stopping_files import read_gsto, read_plain_table, read_srim_table, read_stg

REF = Path(__file__).resolve().parents[1] / "examples" / "reference.toml"
SIZE = 2 * 10**9
BUDGET_S = 5.0
BUDGET_BYTES = 200e6


def _fit_spectra(p):
    from recoilsim.workflows.fit_spectra import read_measurement

    return read_measurement(p, EXP)


EXP = load_experiment(REF)
# reader -> (function, which garbage file it gets)
READERS = {
    "read_asc": (read_asc, "any"), "read_sel": (read_sel, "any"), "read_cut": (read_cut, "cut"),
    "read_cuts": (read_cuts, "dir"), "read_potku_settings": (read_potku_settings, "dir"),
    "read_spectrum": (read_spectrum, "any"), "read_spectra": (read_spectra, "any"),
    "read_idf": (read_idf, "any"), "read_netcdf": (read_netcdf, "nc"),
    "load_experiment": (load_experiment, "any"), "load_file": (load_file, "any"),
    "read_srim_table": (read_srim_table, "any"), "read_gsto": (read_gsto, "any"), "read_stg": (read_stg, "any"),
    "read_plain_table": (lambda p: read_plain_table(p, "7Li", "Cu"), "any"),
    "fit spectra": (_fit_spectra, "any"),
}


def _garbage_text(n_bytes: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    words = ["lorem", "ipsum", "12", "-3.5e7", "x;y", "a,b", "[[", "==", "<tag>", "{", "Li", "nan", "\t"]
    out, size = [], 0
    while size < n_bytes:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


@pytest.fixture(scope="module")
def garbage(tmp_path_factory):
    d = tmp_path_factory.mktemp("garbage")
    files = {}
    for kind, head in (("nul", b""), ("text", _garbage_text(4 * 2**20))):
        sub = d / kind
        sub.mkdir()
        files[kind] = {"cut": _sparse(sub / "x.Li.0.cut", SIZE, head),
                       "ini": _sparse(sub / "measuring_unit_settings.ini", SIZE, head),
                       "any": _sparse(sub / "garbage.dat", SIZE, head),
                       "nc": _sparse(sub / "garbage.nc", SIZE, head), "dir": sub}
    return files


@pytest.mark.parametrize("kind", ["nul", "text"])
@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_on_2gb_of_garbage(benchmark, garbage, kind, name):
    reader, which = READERS[name]
    arg = garbage[kind][which]

    def refuse():
        try:
            reader(arg)
        except RecoilsimError:
            return True
        return False

    tracemalloc.start()
    try:
        assert refuse()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < BUDGET_BYTES, f"{name}: peak {peak / 1e6:.0f} MB"
    assert benchmark.pedantic(refuse, rounds=3, iterations=1)
    assert benchmark.stats.stats.max < BUDGET_S, f"{name}: {benchmark.stats.stats.max:.2f} s"
