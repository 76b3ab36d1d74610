"""Forward model: experiment -> kernel inputs -> bricks -> spectra (simulate, linear model, batch screening, dask sweeps)."""
