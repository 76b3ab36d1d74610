"""Stopping powers and straggling: the shipped SRIM-2013 tables, user sources, per-particle tables for the kernels."""
