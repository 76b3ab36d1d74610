"""Physical constants (SI, exact since the 2019 redefinition of the SI units: BIPM, The
International System of Units, 9th edition (2019), Table 1).

Kept here rather than imported from ``scipy.constants``: that import costs ~0.1 s of every
command's start-up (it loads scipy's array-API layer), for two numbers.
"""

AVOGADRO_PER_MOL = 6.02214076e23  # N_A, 1/mol
ELEMENTARY_CHARGE_C = 1.602176634e-19  # e, C

__all__ = ["AVOGADRO_PER_MOL", "ELEMENTARY_CHARGE_C"]
