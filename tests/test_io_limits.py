"""Readers on bad paths and huge files (issue 15 item 5): only RecoilsimError, early, small;
negative IDF thickness and NaN in netCDF refused. 2 GB of garbage through every reader (time and
memory budgets): benchmarks/test_bench_garbage.py."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

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


def _fit_reader(p):
    from recoilsim.workflows.fit_spectra import read_measurement

    return read_measurement(p, load_experiment(REF))


# every reader of a single file, called on a path
FILE_READERS = {
    "read_asc": read_asc, "read_sel": read_sel, "read_cut": read_cut,
    "read_spectrum": read_spectrum, "read_spectra": read_spectra, "read_idf": read_idf,
    "read_netcdf": read_netcdf, "load_experiment": load_experiment, "load_file": load_file,
    "read_srim_table": read_srim_table, "read_gsto": read_gsto, "read_stg": read_stg,
    "read_plain_table": lambda p: read_plain_table(p, "7Li", "Cu"),
    "fit spectra": _fit_reader,
}
DIR_READERS = {"read_cuts": read_cuts, "read_potku_settings": read_potku_settings}


@pytest.mark.parametrize("path", [None, 3, 2.5, True, b"bytes\x00"])
@pytest.mark.parametrize("name", sorted({**FILE_READERS, **DIR_READERS}))
def test_bad_path_types_are_recoilsim_errors(name, path):
    reader = {**FILE_READERS, **DIR_READERS}[name]
    with pytest.raises(RecoilsimError):
        reader(path)


@pytest.mark.parametrize("nested", ["a = " + "[" * 50_000 + "]" * 50_000,
                                    "a = " + "{b = " * 20_000 + "1" + "}" * 20_000,
                                    "[beam]\nx = " + "[" * 3000 + "]" * 3000])
def test_deeply_nested_toml(tmp_path, nested):
    p = tmp_path / "deep.toml"
    p.write_text(nested)
    with pytest.raises(RecoilsimError):
        load_experiment(p)


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes: ``head``, then a hole of NUL bytes (no disk used for it)."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_read_idf_on_a_huge_file_is_refused_by_size(tmp_path):
    head = b'<?xml version="1.0"?>\n<idf xmlns="http://idf.schemas.itn.pt">\n' + b"<!-- x -->\n" * 6000
    p = _sparse(tmp_path / "huge.xnra", 2**31 + 10, head)  # 2 GiB: OverflowError in the XML parser before
    with pytest.raises(RecoilsimError, match="MiB"):
        read_idf(p)


IDF_NEGATIVE = """<?xml version="1.0" encoding="utf-8"?>
<idf xmlns="http://idf.schemas.itn.pt">
 <sample>
  <structure><layeredstructure><layers>
   <layer><layerthickness units="1e15at/cm2">1000</layerthickness>
    <layerelements><layerelement><name>Si</name><concentration units="fraction">1</concentration></layerelement>
    </layerelements></layer>
   <layer><layerthickness units="1e15at/cm2">-500</layerthickness>
    <layerelements><layerelement><name>O</name><concentration units="fraction">1</concentration></layerelement>
    </layerelements></layer>
  </layers></layeredstructure></structure>
 </sample>
</idf>
"""


def test_read_idf_negative_thickness_is_refused(tmp_path):
    p = tmp_path / "neg.xml"
    p.write_text(IDF_NEGATIVE)
    with pytest.raises(RecoilsimError, match="-500") as ei:
        read_idf(p)
    assert "layer[2]" in ei.value.field and "layerthickness" in ei.value.field
    p.write_text(IDF_NEGATIVE.replace("-500", "500"))
    assert [l.areal_density_1e15 for l in read_idf(p).sample.layers] == [1000.0, 500.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_read_netcdf_rejects_nan_and_inf(tmp_path, bad):
    counts = np.arange(6.0).reshape(2, 3)
    counts[1, 2] = bad
    ds = xr.Dataset({"counts": (("element", "channel"), counts)},
                    coords={"element": ["Li", "O"], "channel": np.arange(3)})
    p = tmp_path / "bad.nc"
    ds.to_netcdf(p)
    with pytest.raises(RecoilsimError, match="counts"):
        read_netcdf(p)
    back = read_netcdf(p, finite=())  # a fit result with unfitted channels marked NaN
    assert np.isnan(back["counts"].values[1, 2]) or np.isinf(back["counts"].values[1, 2])


def test_many_lines_refused_before_loading(tmp_path):
    """read_spectra on 1e8 lines ended in MemoryError, read_sel on 1e8 lines took 7.7 GB: now the
    size is checked first (a file of valid lines whose tail is a sparse hole stands in for them)."""
    lines = "".join(f"{i},{i % 7}\n" for i in range(20000)).encode()
    big = _sparse(tmp_path / "big.csv", 10**9, lines)
    sel_line = b"ERD    Li    7    1.0        #ff0000    1,5,5;1,1,5\n"
    big_sel = _sparse(tmp_path / "big.sel", 10**9, sel_line * 1000)
    for reader, p in ((read_spectrum, big), (read_spectra, big), (read_sel, big_sel)):
        tracemalloc.start()
        try:
            with pytest.raises(RecoilsimError, match="MiB"):
                reader(p)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 20e6  # refused by size: nothing loaded (the time: benchmarks/test_bench_garbage.py)


def test_reading_a_toml_file_does_not_import_xarray(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom recoilsim.io.experiment_file import load_experiment\n"
            f"load_experiment({str(REF)!r})\nimport recoilsim.io\nprint('xarray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
