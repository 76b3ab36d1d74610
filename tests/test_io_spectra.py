"""Plain text/CSV spectra: reading variants, validation, atomic CSV writer, round trip."""


import numpy as np
import pytest
import xarray as xr

from recoilsim.errors import RecoilsimError
from recoilsim.io.spectra import read_spectra, read_spectrum, write_spectrum


def _w(tmp_path, content, name="s.txt"):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize("content", [
    "0 5\n1 7\n2 0\n",
    "# comment\nchannel counts\n0 5\n1 7\n2 0\n",
    "channel,counts\n0,5\n1,7\n2,0\n",
    "0;5\n1;7\n2;0\n",
    "0\t5\n1\t7\n\n2\t0\n",
    "% header comment\n2 0\n0 5\n1 7\n",     # unsorted -> sorted
    "\ufeffchannel,counts\r\n0,5\r\n1,7\r\n2,0\r\n",  # BOM + CRLF
    "0,5,\n1,7,\n2,0,\n",                    # trailing delimiter
    "0 5.0\n1 7\n2 0\n",                      # integral floats -> ints
])
def test_read_variants(tmp_path, content):
    da = read_spectrum(_w(tmp_path, content))
    assert da.dims == ("channel",)
    assert da["channel"].values.tolist() == [0, 1, 2]
    assert da.values.tolist() == [5, 7, 0]
    assert da.dtype.kind == "i"


def test_one_column_and_multi_column(tmp_path):
    da = read_spectrum(_w(tmp_path, "5\n7\n0\n"))
    assert da["channel"].values.tolist() == [0, 1, 2] and da.values.tolist() == [5, 7, 0]
    p = _w(tmp_path, "channel,Li,O,sim\n10,1,2,0.5\n11,3,4,1.5\n")
    ds = read_spectra(p)
    assert set(ds.data_vars) == {"Li", "O", "sim"}
    assert ds["sim"].values.tolist() == [0.5, 1.5]
    assert read_spectrum(p, counts_column="O").values.tolist() == [2, 4]
    assert read_spectrum(p, counts_column=3).dtype.kind == "f"
    with pytest.raises(RecoilsimError):
        read_spectrum(p, counts_column="nope")
    with pytest.raises(RecoilsimError):
        read_spectrum(p, counts_column=9)


def test_decimal_comma_semicolon(tmp_path):
    da = read_spectrum(_w(tmp_path, "0;1,5\n1;2,25\n"))
    assert da.values.tolist() == [1.5, 2.25]


@pytest.mark.parametrize("content, where", [
    ("", "no data"),
    ("# only comments\n\n", "no data"),
    ("channel counts\n", "no data"),
    ("0 5\n1 -7\n", "line 2"),        # negative counts
    ("0 5\n1 nan\n", "line 2"),       # NaN
    ("0 5\n1 inf\n", "line 2"),
    ("0 5\n1.5 7\n", "line 2"),       # non-integer channel
    ("0 5\n-1 7\n", "line 2"),        # negative channel
    ("0 5\n0 7\n", "line 2"),         # duplicate channel
    ("0 5\n1 7 8\n", "line 2"),       # wrong column count
    ("0 5\n1\n", "line 2"),           # truncated row
    ("0 5\n1 abc\n", "line 2"),       # text
    ("0 5\n1 1e400\n", "line 2"),     # huge -> inf
    ("0 5\n1 1e20\n", "line 2"),      # huge
    ("0 5\n99999999999 7\n", "line 2"),  # huge channel
    (b"0 5\n1 \xff\n", "line 2"),     # not UTF-8
    (b"0 5\n1 \x007\n", "line 2"),    # NUL
])
def test_malformed(tmp_path, content, where):
    with pytest.raises(RecoilsimError) as ei:
        read_spectrum(_w(tmp_path, content))
    assert where in str(ei.value)


def test_missing(tmp_path):
    with pytest.raises(RecoilsimError):
        read_spectrum(tmp_path / "none.txt")


def test_write_roundtrip(tmp_path):
    da = xr.DataArray(np.array([0, 3, 10, 2]), dims="channel", coords={"channel": [100, 101, 102, 103]}, name="counts")
    p = write_spectrum(da, tmp_path / "out.csv", comment="7Li spectrum\nsecond line")
    back = read_spectrum(p)
    assert back["channel"].values.tolist() == [100, 101, 102, 103]
    assert back.values.tolist() == [0, 3, 10, 2]
    ds = xr.Dataset({"meas": ("channel", [1, 2]), "sim": ("channel", [0.1234567890123, 2.5])},
                    coords={"channel": [0, 1]})
    p2 = write_spectrum(ds, tmp_path / "two.csv")
    back2 = read_spectra(p2)
    assert back2["sim"].values.tolist() == [0.1234567890123, 2.5]
    assert back2["meas"].values.tolist() == [1, 2]


def test_write_refuses_input_and_bad_data(tmp_path):
    src = _w(tmp_path, "0 5\n1 7\n", "in.txt")
    da = read_spectrum(src)
    with pytest.raises(RecoilsimError):
        write_spectrum(da, src, inputs=[src])
    link = tmp_path / "link.txt"
    link.symlink_to(src)
    with pytest.raises(RecoilsimError):
        write_spectrum(da, link, inputs=[src])
    assert src.read_text() == "0 5\n1 7\n"
    bad = xr.DataArray([1.0, np.nan], dims="channel")
    with pytest.raises(RecoilsimError):
        write_spectrum(bad, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
