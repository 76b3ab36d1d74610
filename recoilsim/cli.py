"""Command-line interface (typer + rich): ``recoilsim <command>``.

Commands
--------
``demo``
    Simulate the built-in reference case (9 MeV 63Cu on Cu/LiPON/LATP) and write its spectra.
``simulate``
    Simulate the spectra of an experiment file (TOML, or IDF/.xnra), optionally over measured ones.
``kinematics``
    Kinematic factors, recoil energies, flight times and cross sections of every recoil.
``paper``
    The three-potential workflow of Kurihara et al. 2024 (ratio spectra, decomposition, charge).
``fit``
    Fit measured spectra (files, or the Potku data named in the experiment file).
``import potku``
    Write an experiment file from a Potku measurement's settings.
``profiles``
    Depth profiles of every element of a Potku measurement, with posterior bands.

One function per command; each is a thin layer over the Python API. A
:class:`~recoilsim.errors.RecoilsimError` ends a command with one red line ``error: <message>``
on stderr and exit code 2 (no traceback); a file that cannot be read or written, exit code 1.
The output folder is checked before any work (:func:`recoilsim.io.outputs.check_output_dir`):
outputs never replace an input, and replace earlier outputs only with ``--overwrite``. Outputs
are written atomically; a folder being written holds a file ``INCOMPLETE`` until it is done.
SIGTERM unwinds like Ctrl-C, so no temporary file is left behind.
"""

from __future__ import annotations

import atexit
import functools
import gc
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import typer

from .errors import RecoilsimError
from .workflows.simulation_outputs import (depth_element, kinematics_rows, load_any_experiment, read_measured,
                                           spectra_summary, write_spectra_csv)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="recoilsim: simulate and fit TOF-ERDA spectra.")

OUTPUT_FORMATS = ("nc", "csv", "png", "svg", "pdf")
#: allocations between two collections of the youngest generation in a command (Python: 700)
GC_THRESHOLD_0 = 20_000


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def _fail(message: str, code: int = 2):
    from rich.text import Text

    _console(stderr=True).print(Text(f"error: {message}", style="bold red"))
    raise typer.Exit(code=code)


def handle_errors(fn):
    """Decorator for commands: RecoilsimError -> red ``error:`` line and exit code 2;
    OSError (cannot read/write) -> the same with exit code 1; warnings -> yellow lines."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fn(*args, **kwargs)
            except RecoilsimError as exc:
                _show_warnings(caught)
                _fail(str(exc), 2)
            except OSError as exc:
                _show_warnings(caught)
                _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 1)
        _show_warnings(caught)
        return result

    def _show_warnings(caught):
        from rich.text import Text

        con = _console(stderr=True)
        seen = set()
        for w in caught:
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                continue
            msg = str(w.message)
            if msg in seen:
                continue
            seen.add(msg)
            con.print(Text(f"warning: {msg}", style="yellow"))

    return wrapper


def _parse_formats(fmt: str) -> list[str]:
    out = []
    for f in fmt.split(","):
        f = f.strip().lower().lstrip(".")
        if not f:
            continue
        if f not in OUTPUT_FORMATS:
            raise RecoilsimError("--format", fmt, f"a comma-separated list of {', '.join(OUTPUT_FORMATS)}")
        if f not in out:
            out.append(f)
    if not out:
        raise RecoilsimError("--format", fmt, f"at least one of {', '.join(OUTPUT_FORMATS)}")
    return out


def _output_names(stem: str, formats: Sequence[str], tofe: bool, measured: bool = False) -> list[str]:
    """The files a simulation writes (see _write_outputs and write_views)."""
    images = [f for f in formats if f not in ("nc", "csv")]
    names = [f"{stem}_spectra.{f}" for f in formats] + [f"{stem}_views.{f}" for f in images]
    if tofe:
        names += [f"{stem}_tofe.{f}" for f in images]
    if measured:
        names += [f"{stem}_measured.{f}" for f in images or ["png"]]
    return names


def _summary_table(ds, exp, title: str):
    from rich.table import Table

    t = Table(title=title)
    t.add_column("element")
    t.add_column("counts", justify="right")
    t.add_column("surface ch", justify="right")
    t.add_column("first layer with it", justify="left")
    t.add_column("its top ch", justify="right")

    def ch(v):
        return "-" if not np.isfinite(v) else f"{v:.1f}"

    for r in spectra_summary(ds, exp):
        layer = "-" if r["first_layer"] is None else f"{r['first_layer']} (at {r['first_layer_top_nm']:g} nm)"
        t.add_row(r["element"], f"{r['counts']:.4g}", ch(r["surface_channel"]), layer, ch(r["first_layer_channel"]))
    return t


def _run_simulation(exp, worker, tofe: bool = False):
    """Simulate ``exp``; ``worker``: the cold start's (``early_worker``), or None."""
    from .forward.cold_start import compile_ahead
    from .forward.compile_plan import collector_paused
    from .workflows.progress import simulation_status
    from .workflows.startup import import_output_modules

    con = _console(stderr=True)
    # the garbage collector off during a cold compile, its leftovers frozen (the command exits soon)
    with con.status(simulation_status(exp.name)), collector_paused(freeze=True):
        # a cold kernel cache: compile on two cores (forward/cold_start.py)
        compile_ahead(exp, worker=worker, chores=[import_output_modules])
        from .forward.simulate import simulate

        return simulate(exp, tofe=tofe) if tofe else simulate(exp)


def _write_outputs(ds, out: Path, stem: str, formats: Sequence[str], inputs: Sequence, depth_for: str | None,
                   tofe: bool = False) -> list[Path]:
    from .io.atomic import write_netcdf
    from .plots.spectra import plot_spectra, plot_tofe_map

    written = []
    for f in formats:
        p = out / f"{stem}_spectra.{f}"
        if f == "nc":
            written.append(write_netcdf(ds, p, inputs=inputs))
        elif f == "csv":
            written.append(write_spectra_csv(ds, p, depth_for=depth_for, inputs=inputs))
        else:
            plot_spectra(ds, path=p, depth_axis_for=depth_element(ds, depth_for), inputs=inputs)
            written.append(p)
            if tofe and "tofe" in ds:
                q = out / f"{stem}_tofe.{f}"
                plot_tofe_map(ds, q, inputs=inputs)
                written.append(q)
    return written


def _report(ds, exp, written: list[Path], title: str):
    con = _console()
    con.print(_summary_table(ds, exp, title))
    for p in written:
        con.print(f"wrote {p}")


# ----------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------

@app.callback()
def main():
    """recoilsim: simulate and fit TOF-ERDA spectra."""
    from .io.atomic import terminate_on_sigterm

    terminate_on_sigterm()
    # A command imports numba, xarray and matplotlib: hundreds of thousands of long-lived objects
    # that Python's default thresholds (700, 10, 10) rescan in several full collections, finding
    # no garbage (0.3-0.5 s of a 2.5 s `recoilsim demo`). A larger first generation makes those
    # rare; cyclic garbage is still collected, in larger batches.
    gc.set_threshold(GC_THRESHOLD_0, 10, 10)
    # At exit Python's last collections scan those objects once more (0.3-0.5 s); frozen
    # (gc.freeze) they are left to the process's end. Registered once per process.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


OVERWRITE = typer.Option(False, "--overwrite", help="replace the outputs of an earlier run in --out")


@app.command()
@handle_errors
def demo(out: Path = typer.Option(Path("recoilsim-demo"), "--out", "-o", help="output folder"),
         tofe: bool = typer.Option(False, "--tofe", help="also simulate and plot the TOF-E map"),
         overwrite: bool = OVERWRITE):
    """Simulate the built-in reference case (9 MeV 63Cu on Cu/LiPON/LATP; Li, P, O, N, C).

    Writes reference_spectra.nc, .csv and .png (Fig. 4a-like, depth on the top axis) and
    reference_views.png (TOF beside energy spectra) to --out.
    """
    from .forward.cold_start import early_worker
    from .io.outputs import check_output_dir, writing

    formats = ["nc", "csv", "png"]
    out = check_output_dir(out, _output_names("reference", formats, tofe), overwrite=overwrite)
    with early_worker() as worker:  # a cold start: before this process imports numba and xarray
        from .model.experiment import reference_experiment

        exp = reference_experiment()
        ds = _run_simulation(exp, worker, tofe=tofe)
    with writing(out, "demo") as out:
        written = _write_outputs(ds, out, "reference", formats, [], "Li", tofe=tofe)
        written += write_views(ds, out, "reference", ["png"], [])
    _report(ds, exp, written, f"{exp.name}: simulated counts")
    rows = {r["element"]: r for r in spectra_summary(ds, exp)}
    li = rows.get("Li")
    if li is not None:
        _console().print(f"Li: surface (Cu) at channel {li['surface_channel']:.1f}, "
                         f"Cu/LiPON interface at channel {li['first_layer_channel']:.1f} "
                         "(paper: 520 and 570)")


@app.command()
@handle_errors
def simulate(experiment: Path = typer.Argument(..., help="experiment file (TOML)"),
             out: Path = typer.Option(Path("."), "--out", "-o", help="output folder"),
             format: str = typer.Option("nc,csv,png", "--format", "-f",
                                        help="comma-separated: nc, csv, png, svg, pdf"),
             depth_for: str = typer.Option("Li", "--depth-for", help="element whose depth labels the plot and CSV"),
             tofe: bool = typer.Option(False, "--tofe", help="also simulate and plot the TOF-E map"),
             flight_length: Optional[float] = typer.Option(None, "--flight-length",
                                                           help="TOF flight length in m (IDF/.xnra files)"),
             measured: Optional[Path] = typer.Option(None, "--measured",
                                                     help="measured spectra (.nc from simulate, or CSV with "
                                                          "channel and one column per element) laid over the "
                                                          "simulation with residuals; no fit"),
             overwrite: bool = OVERWRITE):
    """Simulate the spectra of an experiment file (TOML, or IDF/.xnra describing an ERDA/TOF
    measurement); writes <name>_spectra.{nc,csv,png} to --out."""
    from .forward.cold_start import early_worker
    from .io.outputs import check_output_dir, writing

    formats = _parse_formats(format)
    stem = Path(experiment).stem
    inputs = [experiment] + ([measured] if measured is not None else [])
    out = check_output_dir(out, _output_names(stem, formats, tofe, measured=measured is not None), inputs=inputs,
                           overwrite=overwrite)
    with early_worker() as worker:  # a cold start: before this process imports numba and xarray
        exp = load_any_experiment(experiment, flight_length)
        ds = _run_simulation(exp, worker, tofe=tofe)
    with writing(out, "simulate") as out:
        written = _write_outputs(ds, out, stem, formats, [experiment], depth_for, tofe=tofe)
        written += write_views(ds, out, stem, formats, [experiment], measured)
    _report(ds, exp, written, f"{exp.name}: simulated counts")


@app.command()
@handle_errors
def kinematics(experiment: Optional[Path] = typer.Argument(None, help="experiment file (TOML); "
                                                                      "default: the reference case")):
    """Kinematic factor, surface recoil energy, flight time and cross section of every recoil."""
    from rich.table import Table

    if experiment is None:
        from .model.experiment import reference_experiment

        exp = reference_experiment()
    else:
        from .io.experiment_file import load_experiment

        exp = load_experiment(experiment)
    b, g, d = exp.beam, exp.geometry, exp.detector
    t = Table(title=f"{exp.name}: {b.energy_MeV:g} MeV {b.ion}, recoil angle {g.recoil_deg:g} deg, "
                    f"flight length {d.flight_length_m:g} m, screening {exp.options.screening}")
    for c in ("isotope", "K", "E surface (MeV)", "flight time (ns)", "sigma (mb/sr)"):
        t.add_column(c, justify="left" if c == "isotope" else "right")
    for r in kinematics_rows(exp):
        t.add_row(r["isotope"], f"{r['K']:.5f}", f"{r['energy_MeV']:.4f}", f"{r['flight_time_ns']:.3f}",
                  f"{r['cross_section_mb_sr']:.4g}")
    _console().print(t)
    _console().print("flight time for the surface recoil energy, before any foil loss "
                     f"({'relativistic' if exp.options.relativistic else 'classical'})")


@app.command()
@handle_errors
def paper(out: Path = typer.Option(Path("recoilsim-paper"), "--out", "-o", help="output folder"),
          seed: int = typer.Option(0, "--seed", help="seed of the Poisson counting noise"),
          overwrite: bool = OVERWRITE):
    """Kurihara et al. 2024 Fig. 4: three potentials, ratio spectra, decomposition and charge.

    Writes paper_fig4.png and paper_fig4_summary.json/.csv to --out and prints the numbers.
    """
    from .io.outputs import check_output_dir, writing
    from .workflows.paper import run_paper_case

    out = check_output_dir(out, ["paper_fig4.png", "paper_fig4_summary.json", "paper_fig4_summary.csv"],
                           overwrite=overwrite)
    with writing(out, "paper") as out:
        res = run_paper_case(seed=seed, out=out)
    _console().print(res.table())
    for p in (res.figure, res.summary_json, res.summary_csv):
        _console().print(f"wrote {p}")


@app.command("fit")
@handle_errors
def fit_cmd(experiment: Path = typer.Argument(..., help="experiment file (TOML)"),
            spectra: list[Path] = typer.Argument(None, help="one spectra file per measurement: the .nc or .csv that "
                                                           "simulate writes, or a channel,counts table of the "
                                                           "element; none: the file's [spectra] (Potku data) and "
                                                           "[fit] sections"),
            out: Path = typer.Option(Path("fit-out"), "--out", "-o", help="output folder"),
            element: str = typer.Option("Li", "--element", help="element whose depth profile is fitted"),
            n_bootstrap: int = typer.Option(0, "--bootstrap", min=0, help="parametric bootstrap resamples (>= 0)"),
            background: str = typer.Option("constant", "--background",
                                           help="background per element window fitted with the profile: "
                                                "constant, linear or none (spectra files; a Potku file's "
                                                "[fit] background says it there)"),
            overwrite: bool = OVERWRITE):
    """Fit measured spectra (Poisson likelihood); writes fit.nc, fit.png, summary.txt to --out.

    Without spectra files: the experiment file's spectra section (format "potku") and fit section
    drive recoilsim.workflows.potku.run: method "film" fits the film composition, thickness and
    Q*Omega (docs/worked_example_potku.md); method "profiles" every element's depth profile, as
    the profiles command does (docs/depth_profiles.md).
    """
    if not spectra:
        from .io.experiment_file import load_file
        from .workflows.potku import run as run_potku

        if not load_file(experiment).spectra:
            raise RecoilsimError("spectra", "none given",
                                 "pass a spectra file per measurement (the .nc or .csv that simulate writes, or a "
                                 "channel,counts table), or give the experiment file a [spectra] section "
                                 "(format = 'potku') and a [fit] section")
        con = _console()
        summary = run_potku(experiment, out, progress=lambda line: con.print(line, markup=False),
                            overwrite=overwrite)
        if summary["status"] not in ("success", "poor_fit"):  # poor_fit: reported in the summary
            _fail(f"fit {summary['status']}: {summary['message']}", code=1)
        return
    from .workflows.fit_spectra import run as run_fit

    if background not in ("constant", "linear", "none"):
        raise RecoilsimError("--background", background, "constant, linear or none")
    res = run_fit(experiment, spectra, out, element=element, n_bootstrap=n_bootstrap, overwrite=overwrite,
                  background=None if background == "none" else background)
    if not res.converged:  # poor_fit: converged, the verdict is in the summary and the message
        _fail(f"fit {res.status}: {res.message}", code=1)


def write_views(ds, out: Path, stem: str, formats: Sequence[str], inputs: Sequence,
                measured: Path | None = None) -> list[Path]:
    """Overview (TOF beside energy spectra) and, with ``measured``, the per-element overlay with
    residuals and a table of Pearson chi2 per channel (channels with >= 1 simulated count)."""
    from .plots.views import pearson_residuals, plot_element_panels, plot_overview

    images = [f for f in formats if f in ("png", "svg", "pdf")]
    written = []
    meas = read_measured(measured) if measured is not None else None
    for f in images:
        plot_overview(ds, out / f"{stem}_views.{f}", inputs=inputs)
        written.append(out / f"{stem}_views.{f}")
    if meas is None:
        return written
    from .plots.views import measured_counts

    elements = [str(e) for e in ds["element"].values]
    found = {e: measured_counts(meas, e, ds["channel"].values) for e in elements}
    found = {e: m for e, m in found.items() if m is not None}
    if not found:
        raise RecoilsimError("--measured", str(measured), f"columns or elements named like the simulated ones "
                                                          f"({', '.join(elements)})")
    for f in images or ["png"]:
        p = out / f"{stem}_measured.{f}"
        plot_element_panels(ds, p, elements=list(found), measured=meas, inputs=list(inputs) + [measured])
        written.append(p)
    con = _console()
    con.print("element  channels  chi2/channel (Pearson, no fit)")
    for e, m in found.items():
        sim = np.asarray(ds["counts"].sel(element=e).values, dtype=float)
        use = (sim >= 1.0) & np.isfinite(m)
        r = pearson_residuals(m[use], sim[use])
        con.print(f"{e:8s} {int(use.sum()):9d}  {float(np.mean(r * r)) if use.any() else float('nan'):.3f}")
    return written

# ----------------------------------------------------------------------------------------------
# recoilsim import ...: other programs' projects -> experiment files
# ----------------------------------------------------------------------------------------------

import_app = typer.Typer(no_args_is_help=True, help="Bring other programs' projects in as experiment files.")
app.add_typer(import_app, name="import")


@import_app.command("potku")
@handle_errors
def import_potku_cmd(path: Path = typer.Argument(..., help="Potku measurement folder, project folder or .ini file"),
                     out: Path = typer.Option(None, "--out", "-o", help="experiment file to write "
                                                                      "(default: <measurement>.toml here)"),
                     solid_angle_msr: float = typer.Option(1.0, "--solid-angle", help="solid angle in msr "
                                                                                      "(not in Potku's files)"),
                     n_channels: int = typer.Option(8192, "--channels", help="TOF channels"),
                     overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output file")):
    """Write an experiment TOML from a Potku measurement: beam, geometry, detector, calibration,
    foil and cuts from its files; a placeholder sample to edit. `recoilsim simulate` runs it as it is."""
    from .io.potku_import import import_potku, potku_measurement

    if out is None:
        folder, meas = potku_measurement(path)
        out = Path(f"{(meas or folder).name}.toml")
    written = import_potku(path, out, solid_angle_msr=solid_angle_msr, n_channels=n_channels, overwrite=overwrite)
    _console().print(f"wrote {written} (edit its sample: Potku keeps none)")


@app.command("profiles")
@handle_errors
def profiles_cmd(experiment: Path = typer.Argument(..., help="experiment file (TOML) with a potku [spectra] section"),
                 out: Path = typer.Option(Path("profiles-out"), "--out", "-o", help="output folder"),
                 nodes: Optional[int] = typer.Option(None, "--nodes",
                                                     help="depth nodes (default: [fit] nodes of the file, else 30)"),
                 depth_max: Optional[float] = typer.Option(None, "--depth-max",
                                                           help="deepest node (1e15 atoms/cm2); default: [fit] depth_max "
                                                                "of the file, else what the windows see"),
                 breaks: Optional[bool] = typer.Option(None, "--breaks/--no-breaks",
                                                       help="let the profiles jump at the file's layer boundaries "
                                                            "(default: [fit] breaks of the file, else no)"),
                 overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier run's outputs")):
    """Depth profiles of every element (at.% against depth with posterior bands) of a Potku measurement;
    writes profiles.csv/.nc/.png, profiles_log.png, profiles_fit.png, profiles_summary.txt to --out."""
    from .workflows.potku_profiles import run_profiles

    summary = run_profiles(experiment, out, n_nodes=nodes, depth_max_1e15=depth_max, breaks=breaks, overwrite=overwrite)
    con = _console()
    con.print(summary["text"], markup=False)
    for f in summary["files"]:
        con.print(f"wrote {f}", markup=False)
    if summary["status"] not in ("success", "poor_fit"):  # poor_fit: the verdict is in the summary
        _fail(f"profiles {summary['status']}: {summary['message']}", code=1)


if __name__ == "__main__":  # pragma: no cover
    app()
