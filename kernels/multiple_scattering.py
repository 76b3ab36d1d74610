"""Small-angle multiple scattering of the beam and of the recoils (Numba kernels).

Angular widths
--------------
An ion crossing the areal density N t of element Z2 is deflected by many small screened-Coulomb
collisions. In Sigmund & Winterbon's reduced units (P. Sigmund, K.B. Winterbon, Nucl. Instrum.
Methods 119 (1974) 541, "SW"):

- reduced thickness   tau = pi a^2 N t,  a = 0.8853 a0 (Z1^2/3 + Z2^2/3)^-1/2 (Lindhard's
  screening length, SW eq. 2.7);
- reduced angle       alpha~ = alpha E a / (2 Z1 Z2 e^2), E the lab energy of the moving ion
  (SW eq. 2.6; in the small-angle limit it equals Lindhard's t^1/2 whatever the masses).

The half width at half maximum alpha~_1/2(tau) of the *projected* (one-plane) distribution
(Marwick & Sigmund, Nucl. Instrum. Methods 126 (1975) 317) for the Thomas-Fermi potential is
tabulated below (``LOG10_TAU``, ``LOG10_HALF_WIDTH``: every 1/8 decade from tau = 1e-3 to 1e5),
computed by stopping_data/ms_widths.py from SW's transport solution with Winterbon's fit of
the Thomas-Fermi scattering function. It grows as tau^1.5 at small tau (single-scattering
regime, SW's 1/(2m) law for m = 1/3) and as about tau^0.54 at large tau (towards the Gaussian
regime). Between nodes it is interpolated log-log; beyond the ends extrapolated with the end
slopes.

Layers, compounds and a changing energy: equivalent thickness
---------------------------------------------------------------
Along a path the ion's energy and the medium change. The projected half width w (rad) is
carried as the state; crossing a step of element j at energy E, w is first converted to the
equivalent reduced thickness of that element at that energy, tau_eq = T^-1(w / c_j) with
c_j = 2 Z1 Z_j e^2 / (E a_j), and then w = c_j T(tau_eq + tau_j) (the equivalent-thickness rule
used for multilayers by Szilagyi et al., Nucl. Instrum. Methods B 100 (1995) 103, the DEPTH
code; exact where T is a power law, since the characteristic exponents then add). A compound
is crossed element by element with tau_j = pi a_j^2 f_j N t (f_j the atomic fraction).

Gaussian of the right width
---------------------------
The true distributions have single-scattering (Rutherford) tails and no finite variance; like
DEPTH and SIMNRA, the spread is carried as a Gaussian with the half width of the true
projected distribution: sigma = w / sqrt(2 ln 2).

Effect on the detected energy
-----------------------------
See :func:`ms_energy_variance`: the in-plane deflection of the beam at the recoil depth and of
the (time-reversed) recoil path change the recoil angle (dK/dphi), and the deflections along
the in and out paths change their lengths (energy lost), with the correlation between both.
The real distribution of path lengths is one-sided (1/cos grows for either sign of the
out-of-plane deflection and faster for a more grazing in-plane one): it adds a low-energy
(late-time) tail that the first-order Gaussian does not hold.

Units: MeV, 1e15 atoms/cm2, radians.
"""

import math

import numpy as np
from numba import njit

from .jit_options import INTERNAL, LEAF

A0_CM = 0.529177210903e-8  # Bohr radius, cm (CODATA 2018)
E2_MEV_CM = 1.43996448e-13  # e^2 = 1.43996448 MeV fm, in MeV cm
HWHM_TO_SIGMA = 1.0 / math.sqrt(2.0 * math.log(2.0))  # Gaussian sigma per half width at half maximum

# projected reduced half width alpha~_1/2 against reduced thickness tau (Thomas-Fermi; generated
# by stopping_data/ms_widths.py, see the module docstring)
LOG10_TAU = np.arange(-3.0, 5.0001, 0.125)
LOG10_HALF_WIDTH = np.array([
    -4.38640, -4.19907, -4.01181, -3.82466, -3.63767, -3.45092, -3.26450, -3.07856, -2.89330,
    -2.70898, -2.52598, -2.34476, -2.16590, -1.99010, -1.81814, -1.65083, -1.48898, -1.33322,
    -1.18405, -1.04169, -0.90615, -0.77721, -0.65449, -0.53751, -0.42575, -0.31868, -0.21578,
    -0.11659, -0.02067, 0.07236, 0.16283, 0.25103, 0.33723, 0.42164, 0.50446, 0.58587,
    0.66601, 0.74501, 0.82298, 0.90003, 0.97624, 1.05169, 1.12645, 1.20058, 1.27414,
    1.34716, 1.41970, 1.49180, 1.56348, 1.63479, 1.70574, 1.77636, 1.84668, 1.91671,
    1.98648, 2.05600, 2.12529, 2.19437, 2.26323, 2.33191, 2.40040, 2.46873, 2.53689,
    2.60490, 2.67276,
])
_DLOG = 0.125
MS_NODE_STRIDE = 4  # exit half-width tables: the block's increment walked every 4th energy node (9 % in energy)
MS_THIN_STRIDE = 16  # ... every 16th where it is small (:func:`ms_exit_tables_down`)
MS_THIN_FRACTION = 0.05


@njit(**INTERNAL)
def screening_length_cm(Z1, Z2):
    """Lindhard's screening length a = 0.8853 a0 (Z1^2/3 + Z2^2/3)^-1/2 in cm (SW eq. 2.7)."""
    return 0.8853 * A0_CM / math.sqrt(Z1 ** (2.0 / 3.0) + Z2 ** (2.0 / 3.0))


@njit(cache=True)
def reduced_half_width(tau):
    """Projected reduced half width alpha~_1/2 at reduced thickness tau (table, log-log)."""
    if tau <= 0.0:
        return 0.0
    x = (math.log10(tau) - LOG10_TAU[0]) / _DLOG
    n = LOG10_TAU.shape[0]
    i = int(math.floor(x))
    if i < 0:
        i = 0
    elif i > n - 2:
        i = n - 2
    f = x - i
    return 10.0 ** (LOG10_HALF_WIDTH[i] + f * (LOG10_HALF_WIDTH[i + 1] - LOG10_HALF_WIDTH[i]))


@njit(cache=True)
def reduced_thickness(w):
    """Inverse of :func:`reduced_half_width`: the reduced thickness of reduced half width w."""
    if w <= 0.0:
        return 0.0
    y = math.log10(w)
    n = LOG10_HALF_WIDTH.shape[0]
    lo = 0
    hi = n - 1
    if y <= LOG10_HALF_WIDTH[1]:
        hi = 1
    elif y >= LOG10_HALF_WIDTH[n - 2]:
        lo = n - 2
    else:
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if LOG10_HALF_WIDTH[mid] <= y:
                lo = mid
            else:
                hi = mid
    i = lo
    f = (y - LOG10_HALF_WIDTH[i]) / (LOG10_HALF_WIDTH[i + 1] - LOG10_HALF_WIDTH[i])
    return 10.0 ** (LOG10_TAU[0] + (i + f) * _DLOG)


# the same table in natural logarithms (the kernels carry ln w from element to element, :func:`walk_half_widths`)
LN_TAU0 = LOG10_TAU[0] * math.log(10.0)
LN_HALF_WIDTH = LOG10_HALF_WIDTH * math.log(10.0)
_DLN = _DLOG * math.log(10.0)
# cell lookup of ln(half width) without a search: bins narrower than the narrowest cell (0.156),
# each holding the cell of its lower edge, so the cell of y is that or the next one
_LUT_DY = 0.15
_LUT_Y0 = LN_HALF_WIDTH[1]
_LUT = np.searchsorted(LN_HALF_WIDTH, _LUT_Y0 + _LUT_DY * np.arange(int((LN_HALF_WIDTH[-2] - _LUT_Y0) / _LUT_DY) + 2),
                       side="right") - 1


@njit(cache=True)
def ms_constants(Z1, el_Z):
    """Per element j of a medium, for an ion of atomic number Z1: ln(2 Z1 Z_j e^2 / a_j)
    (ln of MeV rad: the angle per reduced angle unit at 1 MeV, SW eq. 2.6) and pi a_j^2 x 1e15
    (cm2: reduced thickness per unit atomic fraction and 1e15 atoms/cm2, SW eq. 2.7), with a_j
    from :func:`screening_length_cm`. Computed once per ion and sample."""
    n = el_Z.shape[0]
    ln_ce = np.empty(n)
    tau_c = np.empty(n)
    for j in range(n):
        a = screening_length_cm(Z1, el_Z[j])
        ln_ce[j] = math.log(2.0 * Z1 * el_Z[j] * E2_MEV_CM / a)
        tau_c[j] = math.pi * a * a * 1e15
    return ln_ce, tau_c


# per cell of the table: its slope in ln w per node, and the ln tau of its lower node and d(ln tau)/d(ln w)
# (multiplications instead of divisions in the walk: it is a chain of dependent steps)
_DHW = np.diff(LN_HALF_WIDTH)
_LN_TAU_K = LN_TAU0 + _DLN * np.arange(LN_HALF_WIDTH.shape[0] - 1)
_DTAU_DHW = _DLN / _DHW
_INV_DLN = 1.0 / _DLN
_LUT_INV_DY = 1.0 / _LUT_DY


@njit(**LEAF)
def _hw_cell(y):
    """Cell of ln(reduced half width) y in LN_HALF_WIDTH (end cells extrapolate)."""
    n = LN_HALF_WIDTH.shape[0]
    if y <= LN_HALF_WIDTH[1]:
        return 0
    if y >= LN_HALF_WIDTH[n - 2]:
        return n - 2
    lo = _LUT[int((y - _LUT_Y0) * _LUT_INV_DY)]
    while LN_HALF_WIDTH[lo] > y:  # rounding at a bin edge
        lo -= 1
    while LN_HALF_WIDTH[lo + 1] <= y:
        lo += 1
    return lo


@njit(cache=True)
def half_width_after(w, E, Z1, el_Z, frac, path):
    """Projected half width (rad) of an ion after a straight path through a compound.

    Parameters
    ----------
    w : float
        Projected half width (HWHM, rad) before the path.
    E : float
        Lab energy of the ion over the path (MeV; use the mean of the ends).
    Z1 : float
        Atomic number of the ion.
    el_Z, frac : (n_el,) arrays
        Atomic numbers and atomic fractions of the medium's elements.
    path : float
        Path areal density, 1e15 atoms/cm2.

    Equivalent-thickness rule element by element (module docstring; Szilagyi et al. 1995):
    w = c_j T(T^-1(w / c_j) + tau_j), c_j = 2 Z1 Z_j e^2 / (E a_j), tau_j = pi a_j^2 f_j N t.
    """
    if path <= 0.0 or E <= 0.0:
        return w
    ln_ce, tau_c = ms_constants(Z1, el_Z)
    return path_half_width(w, E, E, ln_ce, tau_c, frac, path)


@njit(**LEAF)
def combined_half_width(w1, nu1, w2, nu2):
    """Half width of the sum of two independent deflections of half widths w1, w2 and local
    indices nu1, nu2: (w1^nu + w2^nu)^(1/nu) with nu the mean index (:func:`walk_half_width`)."""
    if w1 <= 0.0:
        return w2
    if w2 <= 0.0:
        return w1
    nu = 0.5 * (nu1 + nu2)
    return (w1 ** nu + w2 ** nu) ** (1.0 / nu)


@njit(cache=True)
def path_half_width(w, E_from, E_to, ln_ce, tau_c, frac, path):
    """Projected half width (rad) after a path along which the energy goes from E_from to E_to
    (:func:`walk_half_width` for one ion and one medium, 1-D arrays, without the stable index)."""
    n = ln_ce.shape[0]
    c2 = np.empty((2, n))
    f2 = np.empty((1, n))
    for j in range(n):
        c2[0, j] = ln_ce[j]
        c2[1, j] = tau_c[j]
        f2[0, j] = frac[j]
    mb = np.empty((4, n))
    ms_block_constants(c2, f2, 0, mb)
    return walk_half_width(w, E_from, E_to, mb, 0, path, np.empty((9, 1)))[0]


@njit(**LEAF)
def ms_block_constants(ms_c, frac, b, mb):
    """Constants of :func:`walk_half_width` in block b (atomic fractions frac[b]) for every ion
    of ms_c (rows 2i, 2i + 1: ln_ce, tau_c of :func:`ms_constants`): rows 3i, 3i + 1, 3i + 2 of
    mb hold ln_ce, tau_c f_j (reduced thickness per 1e15 atoms/cm2 of path) and its logarithm
    (-inf where it is 0). The elements present in the block (f_j > 0) come first, in their
    order, the others after them (tau_c f_j = 0); the last row's first entry is the number
    present, so that the walks loop over those only; its second entry (set 0 here) is the order
    in which :func:`walk_half_widths` crosses the elements of a sub-step: 0 one after the other,
    1 symmetric (each element's half in order, then the other halves in reverse order: Strang's
    splitting, G. Strang, SIAM J. Numer. Anal. 5 (1968) 506, second order in the sub-step where
    crossing them one after the other is first order, so that a long path in one block gives the
    width of many thin slices of the mixture; the brick kernel sets it in blocks of varying
    composition, :mod:`profile_blocks`)."""
    n_ion = ms_c.shape[0] // 2
    n = frac.shape[1]
    c = 0  # columns filled: the present elements
    for j in range(n):
        if frac[b, j] > 0.0:
            for i in range(n_ion):
                tf = ms_c[2 * i + 1, j] * frac[b, j]
                mb[3 * i, c] = ms_c[2 * i, j]
                mb[3 * i + 1, c] = tf
                mb[3 * i + 2, c] = math.log(tf) if tf > 0.0 else -math.inf
            c += 1
    mb[mb.shape[0] - 1, 0] = c
    if n > 1:
        mb[mb.shape[0] - 1, 1] = 0.0
    for j in range(c, n):
        for i in range(n_ion):
            mb[3 * i, j] = 0.0
            mb[3 * i + 1, j] = 0.0
            mb[3 * i + 2, j] = -math.inf


# ln(e^a + e^b) = max(a, b) + ln(1 + e^-|a - b|): the second term tabulated against z = |a - b| on
# [0, _SP_ZMAX] in steps of 1/_SP_N with its derivative, a cubic Hermite between nodes, stored as
# the cubic's coefficients in the cell's fraction (error < 4e-10; beyond _SP_ZMAX it is < 1e-17
# and taken as 0)
_SP_N = 32
_SP_ZMAX = 40.0
_SP_Z = np.arange(int(_SP_ZMAX * _SP_N) + 2) / _SP_N
_SP_F = np.log1p(np.exp(-_SP_Z))
_SP_D = -1.0 / (1.0 + np.exp(_SP_Z)) / _SP_N  # derivative per cell
_SP_C = np.stack([_SP_F[:-1], _SP_D[:-1], 3.0 * np.diff(_SP_F) - 2.0 * _SP_D[:-1] - _SP_D[1:],
                  -2.0 * np.diff(_SP_F) + _SP_D[:-1] + _SP_D[1:]], axis=1)


@njit(**LEAF)
def log_add(a, b):
    """ln(e^a + e^b) without ``exp`` or ``log``: max(a, b) + ln(1 + e^-|a - b|), the second term
    from a cubic Hermite table (numerics, not physics: within 4e-10 of the exact value)."""
    hi = max(a, b)
    z = (hi - min(a, b)) * _SP_N
    if z >= _SP_ZMAX * _SP_N:
        return hi
    i = int(z)
    t = z - i
    return hi + (_SP_C[i, 0] + t * (_SP_C[i, 1] + t * (_SP_C[i, 2] + t * _SP_C[i, 3])))


@njit(**LEAF)
def walk_half_width(w, E_from, E_to, mb, i_c, path, ww):
    """Projected half width (rad) after a path along which the energy goes from E_from to E_to,
    and its local stable index at the end of the path (one function for both; no flag for the index, since a
    literal flag makes Numba compile the function once per value).

    The path is crossed in up to 6 equal sub-steps (one per 1/4 of relative energy change),
    each at its mid energy (energy taken linear in the path), with the equivalent-thickness
    rule of :func:`half_width_after` element by element (the block's constants of
    :func:`ms_block_constants` for the ion: rows i_c, i_c + 1, i_c + 2 of mb; tables passed
    whole with row indices, as in the brick kernel). The half width is
    carried in natural logarithms from element to element: ln tau_eq is read from the table
    (linear in each cell), ln(tau_eq + tau_j) by :func:`log_add` (no ``exp`` or ``log`` per
    element; numerics, within 4e-10 in ln tau of one ``exp`` and one ``log``).
    ``w`` is the half width at the start of the walk (E_from); path in 1e15 atoms/cm2; ww a
    (9, 1) work array (the walk is done by :func:`walk_half_widths`, which does several at once).

    The stable index nu: the local growth w ~ tau^(1/nu) at E_to. Small-angle multiple
    scattering is close to a symmetric stable (Levy) law whose index nu grows with the thickness
    from about 0.7 to about 1.8 (Amsel, Battistig, L'Hoir, Nucl. Instrum. Methods B 201 (2003)
    325): the half widths of independent contributions then add as w^nu = w1^nu + w2^nu (nu = 2:
    in quadrature; :func:`combined_half_width`). nu is read from the slope of the table at the
    equivalent reduced thickness of w, averaged over the elements with weight f_j a_j^2 (their
    share of the reduced thickness), and clipped to [1, 2].
    """
    ww[0, 0] = w
    ww[1, 0] = 1.0  # (the stable index is wanted)
    ww[2, 0] = E_from
    ww[3, 0] = E_to
    ww[4, 0] = i_c
    walk_half_widths(ww, ww.shape[1], mb, path)  # (ww.shape[1] == 1; a literal 1 would compile it a second time)
    return ww[0, 0], ww[1, 0]


@njit(**LEAF)
def walk_half_widths(ww, m, mb, path):
    """:func:`walk_half_width` for every column s < m of ww with a start width ww[0, s] >= 0, all over
    the same path (the outgoing particles of one state): rows 0 the start width, replaced by the
    width, 1 the stable index (in: > 0 where it is wanted, else it is not computed and left as
    it is), 2 E_from, 3 E_to, 4 the row i_c of mb; rows 5-8 work.
    The same steps in the same order per column; the element loop runs outside the column loop
    so that the columns' chains of dependent steps (each step waits for the last) overlap in the
    processor instead of running one after the other."""
    n_max = 0
    n_tab = LN_HALF_WIDTH.shape[0]
    n_el = int(mb[mb.shape[0] - 1, 0])  # elements present (:func:`ms_block_constants`)
    # symmetric order (:func:`ms_block_constants`): each element's half, then the elements again in reverse
    sym = mb.shape[1] > 1 and mb[mb.shape[0] - 1, 1] > 0.0
    n_pass = 2 * n_el if sym else n_el
    ln_part = math.log(0.5) if sym else 0.0
    n_last = 0  # ln(path / n) of the last n (the same for most columns)
    lp_last = 0.0
    for s in range(m):
        if ww[0, s] < 0.0:
            continue
        ww[5, s] = math.log(ww[0, s]) if ww[0, s] > 0.0 else -math.inf
        n = 0  # sub-steps: one per 1/4 of relative energy change, at most 6
        if path > 0.0:
            n = 1 + int(4.0 * abs(ww[3, s] - ww[2, s]) / max(ww[2, s], ww[3, s]))
            if n > 6:
                n = 6
            if n != n_last:
                n_last = n
                lp_last = math.log(path / n)
            ww[7, s] = lp_last
        ww[6, s] = n
        if n > n_max:
            n_max = n
    for i in range(n_max):
        for s in range(m):
            if ww[0, s] >= 0.0 and i < ww[6, s]:
                ww[8, s] = math.log(ww[2, s] + (ww[3, s] - ww[2, s]) * (i + 0.5) / ww[6, s])
        for jj in range(n_pass):
            j = jj if jj < n_el else 2 * n_el - 1 - jj
            for s in range(m):
                if ww[0, s] < 0.0 or i >= ww[6, s]:
                    continue
                i_c = int(ww[4, s])
                if mb[i_c + 1, j] <= 0.0:
                    continue
                # the equivalent-thickness rule in logs: ln w (lw, -inf: none yet) after element j
                lw = ww[5, s]
                lc = mb[i_c, j] - ww[8, s]  # ln c_j
                lt = mb[i_c + 2, j] + ww[7, s] + ln_part  # ln tau_j (of its part)
                if lw > -math.inf:  # add the equivalent reduced thickness of w (the table's inverse)
                    y = lw - lc
                    k = _hw_cell(y)
                    lt = log_add(_LN_TAU_K[k] + (y - LN_HALF_WIDTH[k]) * _DTAU_DHW[k], lt)
                x = (lt - LN_TAU0) * _INV_DLN
                k = int(math.floor(x))
                if k < 0:
                    k = 0
                elif k > n_tab - 2:
                    k = n_tab - 2
                ww[5, s] = lc + LN_HALF_WIDTH[k] + (x - k) * _DHW[k]
    for s in range(m):  # the width, and its stable index at E_to where wanted
        if ww[0, s] < 0.0:
            continue
        if ww[6, s] > 0:
            ww[0, s] = math.exp(ww[5, s])
        if ww[1, s] <= 0.0:
            continue
        lw = ww[5, s]
        lnE = math.log(ww[3, s])
        i_c = int(ww[4, s])
        num = 0.0
        den = 0.0
        for j in range(n_el):
            wt = mb[i_c + 1, j]
            if wt > 0.0:
                num += wt * _DHW[_hw_cell(lw - (mb[i_c, j] - lnE))] * _INV_DLN
                den += wt
        ww[1, s] = 2.0 if num <= 0.0 else min(2.0, max(1.0, den / num))


@njit(**LEAF)
def ms_exit_tables_down(A, o, cell, path, lnE0, dlnE, mass, k0, k1, mb, i_c, A2, ww):
    """Half-width exit table o (rows o of A, A2) at the bottom of a block from the one at its top
    (the block's constants of the particle: rows i_c.. of mb, :func:`walk_half_width`; ``cell``:
    rows 0-2 of :func:`exit_tables.exit_tables_down` for the same particle and block, the cell
    (j, t) and the energy E1 at the block top of each node's energy E_k at the bottom, j = -1
    where the particle stops in the block; ww: a work array of :func:`walk_half_widths` with a
    tenth row and at least one column per node).

    A[k] is the projected half width (rad) of the outgoing particle's path traced back from the
    detector (a walk that starts at the surface) down to the block top, for energy E_k at the
    block top; A2[k] the same at the block bottom: the walk continues through the block, where
    the particle (forward in time) goes from E_k at the bottom to E1 = R^-1(R(E_k) - path) at
    the top. Only nodes k0..k1 are filled (those between the loss threshold and the highest
    energy the particle is made with); nodes whose particle stops in the block get 0.

    Numerics (tabulation, not physics): A2[k] = A(E1) + dA(E_k), the half width at the block top
    carried down plus the block's own increment. A(E1) is read at every node: a cubic Hermite in
    the cell of E1 with central-difference node slopes (Catmull-Rom) where its neighbours lie
    inside k0..k1 (filled in the block above too), else linear; linear carrying at every block is
    a numerical diffusion of O(h) in the cell size that a stack of thin blocks accumulates (1e-4
    of a spectrum's peak over the reference's 31 one-nanometre blocks). The increment dA = walk(A(E1)) - A(E1) changes slowly and smoothly with energy
    (close to a power of E) and is walked on every MS_THIN_STRIDE-th node (and the last), and
    on every MS_NODE_STRIDE-th node between two of those where it is at least MS_THIN_FRACTION
    of A2 at either; between walked nodes it is interpolated geometrically (linearly where it is
    not positive at both). Interpolating the half width itself (every 4th node, linearly) put
    a bias into every block that a stack of thin blocks accumulated: up to 9e-4 of a spectrum's
    peak in the reference case with its 1 nm Li profile against tables walked at every node
    (benchmarks/README.md, "Session 9, kernel"); carrying A(E1) at every node removes it.
    """
    if k0 > k1:
        return
    for k in range(k0, k1 + 1):  # the half width at the block top carried down: A(E1)
        j = int(cell[0, k])
        if j < 0:
            A2[o, k] = 0.0
            continue
        t = cell[1, k]
        a0 = A[o, j]
        a1 = A[o, j + 1]
        if j - 1 < k0 or j + 2 > k1:
            A2[o, k] = a0 + t * (a1 - a0)
            continue
        # cubic Hermite, slopes (a1 - a_(j-1))/2 and (a_(j+2) - a0)/2, in the form a0 + t (s0 + t (c2 + t c3))
        s0 = 0.5 * (a1 - A[o, j - 1])
        s1 = 0.5 * (A[o, j + 2] - a0)
        d = a1 - a0
        v = a0 + t * (s0 + t * (3.0 * d - 2.0 * s0 - s1 + t * (s0 + s1 - 2.0 * d)))
        A2[o, k] = v if v > 0.0 else 0.0
    # first pass: every MS_THIN_STRIDE-th node and the last
    # (int64 values, not the literal constants: Numba would compile _ms_walk_nodes once per literal)
    m1 = _ms_walk_nodes(A2, o, cell, lnE0, dlnE, mass, k0, k1, np.int64(MS_THIN_STRIDE), i_c, ww, np.int64(0))
    walk_half_widths(ww, m1, mb, path)
    thick = False
    for c in range(m1):  # row 3 (E_to, read by the walk) becomes the increment, row 1 the finer stride's flag
        k = int(ww[9, c])
        w = ww[0, c]
        ww[0, c] = -1.0  # (done: the second pass skips it)
        ww[1, c] = 0.0
        ww[3, c] = 0.0
        if w >= 0.0:
            ww[3, c] = w - A2[o, k]
            A2[o, k] = w
            if ww[3, c] >= MS_THIN_FRACTION * w:  # the intervals on both sides get the finer stride
                thick = True
                ww[1, c] = 1.0
                if c > 0:
                    ww[1, c - 1] = 1.0
    m = m1
    if thick and MS_NODE_STRIDE < MS_THIN_STRIDE:  # second pass: every MS_NODE_STRIDE-th node inside
        for c in range(m1 - 1):
            if ww[1, c] > 0.0:
                a = int(ww[9, c])
                m = _ms_walk_nodes(A2, o, cell, lnE0, dlnE, mass, a + MS_NODE_STRIDE,
                                   a + (int(ww[9, c + 1]) - 1 - a) // MS_NODE_STRIDE * MS_NODE_STRIDE,
                                   np.int64(MS_NODE_STRIDE), i_c, ww, m)
        walk_half_widths(ww, m, mb, path)
        for c in range(m1, m):
            k = int(ww[9, c])
            ww[3, c] = 0.0
            if ww[0, c] >= 0.0:
                ww[3, c] = ww[0, c] - A2[o, k]
                A2[o, k] = ww[0, c]
    # the increments between walked nodes (the first pass's, with the second pass's inside the flagged intervals)
    c2 = m1
    for c in range(m1 - 1):
        a = c
        while True:
            if ww[1, c] > 0.0 and c2 < m and ww[9, c2] < ww[9, c + 1]:
                b = c2
                c2 += 1
            else:
                b = c + 1
            # the increment between walked nodes ka < kb: geometric between theirs (linear where they are not both
            # positive); nodes whose particle stops in the block keep 0
            ka = int(ww[9, a])
            kb = int(ww[9, b])
            inc_a = ww[3, a]
            inc_b = ww[3, b]
            if kb > ka + 1:
                geometric = inc_a > 0.0 and inc_b > 0.0
                rho = (inc_b / inc_a) ** (1.0 / (kb - ka)) if geometric else 1.0
                add = inc_a
                for i in range(ka + 1, kb):
                    add = add * rho if geometric else inc_a + (inc_b - inc_a) * (i - ka) / (kb - ka)
                    if cell[0, i] >= 0.0:
                        A2[o, i] += add
            if b == c + 1:
                break
            a = b


@njit(**LEAF)
def _ms_walk_nodes(A2, o, cell, lnE0, dlnE, mass, k_from, k_to, stride, i_c, ww, m):
    """Columns m.. of ww for the walks of nodes k_from, k_from + stride, ..., and k_to (if
    k_to >= k_from; for the first pass k_to is the last node and always walked) from A2 (A(E1)):
    start width, no stable index, E1 -> E_k, row i_c of the particle's constants (start -1: the
    particle stops in the block, not walked); row 9 the node (the walk uses rows 0-8). Returns the
    next free column."""
    if k_to < k_from:
        return m
    k = k_from
    while True:
        ww[0, m] = -1.0
        ww[9, m] = k
        if cell[0, k] >= 0.0:
            ww[0, m] = A2[o, k]
            ww[1, m] = 0.0  # (no stable index)
            ww[2, m] = cell[2, k]
            ww[3, m] = mass * math.exp(lnE0 + k * dlnE)
            ww[4, m] = i_c
        m += 1
        if k == k_to:
            break
        k = min(k + stride, k_to)
    return m


@njit(**LEAF)
def walk_moments(w0, w1, L0, L1, m1, m2):
    """Moments of a walk's angular variance against the energy lost along it, extended over a
    step: m1 = int L dA, m2 = int L^2 dA (A = (w sigma/HWHM)^2 the projected variance, L the
    energy lost since the start, MeV). Over a step from (w0, L0) to (w1, L1) A and L are taken
    linear in each other: m1 += dA L_mid, m2 += dA (L_mid^2 + dL^2/12)."""
    h2 = HWHM_TO_SIGMA * HWHM_TO_SIGMA
    dA = (w1 * w1 - w0 * w0) * h2
    Lm = 0.5 * (L0 + L1)
    dL = L1 - L0
    return m1 + dA * Lm, m2 + dA * (Lm * Lm + dL * dL / 12.0)


@njit(**LEAF)
def ms_energy_variance(var_angle, k_phi, J, g_in, cov_in, var_int_in, var_out, loss_out):
    """Variance (MeV^2, at the detector) of the detected energy from multiple scattering.

    First order in the in-plane deflections (the bookkeeping of the DEPTH code: Szilagyi et al.,
    Nucl. Instrum. Methods B 100 (1995) 103). The beam's deflection theta(x) at the recoil depth
    x changes the recoil angle by -theta (phi = pi - alpha - beta); its deflections along the way
    lengthen the in-path and lower the beam energy by tan(alpha) I_in, I_in = int theta dL_in
    (L_in the beam's energy loss). The recoil's path traced back from the detector is a walk psi
    that starts at the surface: psi(x) changes the recoil angle by -psi and tan(beta) I_out,
    I_out = int psi dL_out, is the extra loss on the way out. So

        dE_det = J [k (theta + psi) - g_in I_in] - tan(beta) I_out,   g_in = K tan(alpha),

    and with independent increments of the walks, Cov(theta, I_in) = L A - int L dA and
    Var(I_in) = L^2 A - 2 L int L dA + int L^2 dA (the beam's :func:`walk_moments`). For the
    way out, the walk's growth is taken uniform in the loss: Cov = r A/2, Var = r^2 A/3 (r =
    tan(beta) x the loss). The recoil-angle term uses var_angle, the variance of theta + psi
    from :func:`combined_half_width` (heavy-tailed deflections add their half widths more than
    in quadrature; var_in + var_out would be the Gaussian rule).

    Parameters
    ----------
    var_angle : float
        Variance (rad^2) of the recoil-angle change theta + psi.
    k_phi : float
        -E_beam dK/dphi (MeV per rad): recoil-energy change per radian of smaller recoil angle.
    J : float
        dE_detector/dE_recoil: the exit path's sensitivity.
    g_in : float
        K tan(alpha).
    cov_in, var_int_in : float
        Cov(theta, I_in) (rad MeV) and Var(I_in) (rad^2 MeV^2) of the beam's walk.
    var_out : float
        Projected angular variance (rad^2) of the recoil's walk at x.
    loss_out : float
        tan(beta) (J E_recoil - E_detector) (MeV): out-path loss seen at the detector, per radian.
    """
    kb = J * k_phi
    v = kb * kb * var_angle
    v += J * J * (g_in * g_in * var_int_in - 2.0 * k_phi * g_in * cov_in)
    v += var_out * (loss_out * loss_out / 3.0 - kb * loss_out)
    return max(v, 0.0)
