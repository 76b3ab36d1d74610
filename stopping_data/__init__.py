"""Tabulated stopping powers shipped with recoilsim (see PROVENANCE.md)."""
