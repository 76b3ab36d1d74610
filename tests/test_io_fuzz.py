"""Fuzz every reader with mutated valid files: only RecoilsimError (or success) may come out.

Mutations: byte flips, truncation, deletion/duplication of lines, insertion of random tokens and
random bytes. Base files are small synthetic files in the real formats (IDF included) (the .sel line and the .cut
header mirror the Potku sample data in ../shared/data/potku-ecaart-11-mini).
"""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoilsim.errors import RecoilsimError
from recoilsim.io import idf, potku_events, potku_selections, potku_settings, spectra

BASES = {
    "asc": ("ev.asc", b"4792 543\n5836 313\n2780 3724\n3683 1107\n4538 686\n1246 2869\n1524 1949\n"),
    "sel": ("m.sel", b"ERD    Li    7    1.081        #ff0000    1169,1276,1371,1476;3567,3007,2573,2188\n"
                     b"ERD    Si        1.0        #000000    1994,2143,2294;4267,3686,3198\n"
                     b"RBS    Cl    35    1.0    Mn    #1d9791    1698,1846,1969;7107,6027,5207\n"),
    "cut": ("m.7Li.0.cut", b"Count: 3\nType: ERD\nWeight Factor: 1.081\nEnergy: 0\nDetector Angle: 0\n"
                           b"Scatter Element: \nElement losses: False\nSplit count: 1\n\n"
                           b"ToF, Energy, Event number\n1246 2869 606\n1524 1949 817\n1300 2500 900\n"),
    "spectrum": ("s.csv", b"# a spectrum\nchannel,counts,sim\n0,5,1.5\n1,7,2.5\n2,0,0.25\n3,12,11.0\n"),
    "ini": ("measuring_unit_settings.ini",
            b"[default]\nuse_settings = \n\n[beam]\nelement = Cl\nisotope = 35\nenergy = 8.515\n\n"
            b"[measuring_unit]\ndetector_angle = 41.2\ntarget_angle = 20.6\ntime_of_flight_lenght = 0.623\n"
            b"carbon_foil_thickness = 3.1\ntarget_density = 3.0\n"),
    "idf": ("s.xnra", b"""<?xml version="1.0" encoding="utf-8"?>
<idf xmlns="http://idf.schemas.itn.pt"><sample><structure><layeredstructure><layers>
<layer><layerthickness units="1e15at/cm2">500.0</layerthickness><layerelements>
<layerelement><name>Li</name><concentration units="fraction">0.25</concentration></layerelement>
<layerelement><name>6Li</name><concentration units="fraction">0.0</concentration></layerelement>
<layerelement><name>O</name><concentration units="fraction">0.75</concentration></layerelement>
</layerelements></layer></layers></layeredstructure></structure>
<spectra><spectrum><beam><beamparticle>35Cl</beamparticle><beamenergy units="keV">8515</beamenergy></beam>
<geometry><incidenceangle units="degree">69.4</incidenceangle><scatteringangle units="degree">41.2</scatteringangle>
<exitangle units="degree">69.4</exitangle></geometry>
<calibrations><energycalibrations><energycalibration><calibrationmode>time</calibrationmode><calibrationparameters>
<calibrationparameter units="ns">1.66</calibrationparameter><calibrationparameter units="ns/channel">0.057</calibrationparameter>
</calibrationparameters></energycalibration></energycalibrations></calibrations>
<data><simpledata><x>10 11 12</x><y>1 5 2</y></simpledata></data>
<process><simulations><simulation><simulationtype>total</simulationtype><simpledata><x>10 11 12</x><y>1.5 4.5 2.0</y></simpledata></simulation></simulations></process>
</spectrum></spectra></sample></idf>
"""),
}

READERS = {
    "asc": potku_events.read_asc,
    "sel": potku_selections.read_sel,
    "cut": potku_selections.read_cut,
    "spectrum": spectra.read_spectrum,
    "ini": lambda p: potku_settings.read_potku_settings(p.parent),
    "idf": lambda p: _idf_full(p),
}


def _idf_full(p):
    doc = idf.read_idf(p)
    for i in range(len(doc.spectra)):  # the converters must also fail cleanly
        for conv in (doc.beam, doc.geometry):
            try:
                conv(i)
            except RecoilsimError:
                pass

TOKENS = [b"nan", b"NaN", b"-1", b"1e999", b"99999999999999999999", b"inf", b"abc", b"\x00", b"\xff\xfe",
          b";", b",", b"\t", b"    ", b"\n", b"\r", b":", b"[x]", b"=", b"<", b">", b"</x>", b"&amp;", b"<!ENTITY", b"0", b"1.5", b"#", b"\xc3\xa9", b"-"]


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "del_line", "dup_line", "token", "bytes"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif kind in ("del_line", "dup_line"):
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "del_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif kind == "token":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from(TOKENS))
        else:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


def _run(kind, content):
    name, _ = BASES[kind]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(content)
        try:
            READERS[kind](p)
        except RecoilsimError:
            pass


@pytest.mark.parametrize("kind", sorted(BASES))
def test_base_files_are_valid(kind):
    name, base = BASES[kind]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(base)
        READERS[kind](p)  # must not raise


@pytest.mark.parametrize("kind", sorted(BASES))
def test_fuzz_reader(kind):
    @settings(max_examples=int(__import__("os").environ.get("RECOILSIM_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(content=mutated(BASES[kind][1]))
    def inner(content):
        _run(kind, content)

    inner()
