"""End-to-end workflows: the reference paper (three potentials) and the Potku worked example."""
