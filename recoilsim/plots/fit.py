"""Plot of a :class:`recoilsim.fitting.driver.FitResult`: data, model, residuals per spectrum; profiles with bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RecoilsimError
from .save import new_figure, save_figure


def plot_fit(result, path) -> Path:
    """Write a PNG/SVG: one column per spectrum (data + model over residuals), profiles with 1-sigma bands."""
    ds = result.dataset
    if ds is None:
        raise RecoilsimError("fit result", result.status, f"a fit with a result to plot ({result.message})")
    pairs = [(int(m), str(e)) for m in ds.measurement.values for e in ds.element.values
             if np.isfinite(ds.fitted.sel(measurement=m, element=e).values).any()]
    n = len(pairs)
    fig = new_figure((3.2 * max(n, 1) + 1, 8), dpi=110)
    axes = fig.subplots(3, max(n, 1), squeeze=False, gridspec_kw=dict(height_ratios=[3, 1, 3]))
    for k, (m, e) in enumerate(pairs):
        f = ds.fitted.sel(measurement=m, element=e).values
        d = ds.measured.sel(measurement=m, element=e).values
        r = ds.residual.sel(measurement=m, element=e).values
        w = np.nonzero(np.isfinite(f))[0]
        ch = ds.channel.values[w]
        axes[0, k].step(ch, d[w], where="mid", color="k", lw=0.7, label="data")
        axes[0, k].plot(ch, f[w], color="C3", lw=1.2, label="model")
        axes[0, k].set_title(f"measurement {m}: {e}", fontsize=9)
        axes[1, k].plot(ch, r[w], ".", ms=2, color="C0")
        axes[1, k].axhline(0, color="k", lw=0.5)
        axes[1, k].set_xlabel("channel")
    axes[0, 0].set_ylabel("counts")
    axes[1, 0].set_ylabel("deviance res.")
    axes[0, 0].legend(fontsize=8)
    gs = axes[2, 0].get_gridspec()
    for ax in axes[2, :]:
        ax.remove()
    axp = fig.add_subplot(gs[2, :])
    z = ds.depth_nm.values
    for m in ds.measurement.values:
        p = ds.profile.sel(measurement=m).values
        s = ds.profile_sigma.sel(measurement=m).values
        line, = axp.plot(z, p, label=f"measurement {int(m)}")
        axp.fill_between(z, p - s, p + s, alpha=0.25, color=line.get_color())
        if "profile_mcmc_lo" in ds:  # second method: MCMC 16-84 % band (FitResult.sample_posterior)
            for v in ("profile_mcmc_lo", "profile_mcmc_hi"):
                axp.plot(z, ds[v].sel(measurement=m).values, ls="--", lw=0.8, color=line.get_color(),
                         label="MCMC 16-84 %" if v.endswith("lo") and int(m) == int(ds.measurement.values[0]) else None)
    axp.set_xlabel("depth from layer top (nm)")
    axp.set_ylabel("ratio to nominal")
    axp.legend(fontsize=8)
    fig.suptitle(f"{result.status}: deviance/dof = {ds.attrs['reduced_deviance']:.3f}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
