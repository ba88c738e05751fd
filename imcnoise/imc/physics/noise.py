"""Counter-based random numbers: every draw a pure function of its key and its position.

Per-read noise (device read noise, kT/C of the held slot, sense-amp noise) is keyed by (chip seed,
purpose, layer, slot) and positioned by (image, time step, read); device programming draws by the
sub-array's seed and the device's position. A value is computed from its key and position, never
from a generator's state, so an image's numbers do not depend on which images share its batch,
on which chips share its pass, on the engine, or on the device (CPU or GPU), and a draw that is
not needed is simply not computed. Re-runs, resumed runs and parallel runs draw identical numbers.

The generator (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA
2014: SplitMix64, the generator of Java's ``SplittableRandom``): draw n of stream ``key`` is
``mix64((key + n) * GAMMA)``. Uniforms take its top 53 bits. Normals take a two-level quantile
table (:func:`normal_table`, built once in float64): the top 16 bits pick one of 2^16 equal-mass
bins, Phi^-1((j + 1/2) / 2^16), resolution < 4e-5 sigma near 0; in the two outermost bins the
next 16 bits pick one of 2^16 sub-bins, so the tails reach +-6.3 sigma (the mass beyond is 1e-10)
with exact tail probabilities down to 2^-32. Integer arithmetic and table lookups only, so the
numbers are bit-identical on every device and whether or not the kernels are compiled.

Cost: each kernel runs as ONE fused loop (:class:`imcnoise.runtime.compiled`, ``torch.compile``;
~50x faster than the ~20 separate eager int64 kernels it replaces); where compilation is
unavailable (no C++ compiler, or ``IMCNOISE_COMPILE=0``) the same function runs eagerly, with
identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...runtime import compiled
from ...seeding import derive_seed

TABLE_BITS = 16
_U64 = (1 << 64) - 1


def _s64(c: int) -> int:
    """A 64-bit constant as torch's signed int64 (arithmetic is mod 2**64 either way)."""
    c &= _U64
    return c - (1 << 64) if c >= (1 << 63) else c


GAMMA = _s64(0x9E3779B97F4A7C15)  # SplitMix64's odd increment (golden ratio)
_M1 = _s64(0xBF58476D1CE4E5B9)
_M2 = _s64(0x94D049BB133111EB)


def _lsr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser (a bijection of 64-bit integers with good avalanche)."""
    x = x ^ _lsr(x, 30)
    x = x * _M1
    x = x ^ _lsr(x, 27)
    x = x * _M2
    return x ^ _lsr(x, 31)


def normal_index(h: torch.Tensor) -> torch.Tensor:
    """Index into :func:`normal_table` of the normal of hash ``h`` (int64): the top 16 bits pick a
    bin; in the two outermost bins the next 16 bits pick a sub-bin (entries 2^16 + lo of the lower
    tail, 2^17 + lo of the upper one). Every normal a stream can give is one of the table's
    3 * 2^16 entries, so a function of a normal can be tabulated (:func:`.devices.program_many`)."""
    hi = _lsr(h, 64 - TABLE_BITS)
    lo = _lsr(h, 64 - 2 * TABLE_BITS) & (_BINS - 1)
    return torch.where(hi == 0, _BINS + lo, torch.where(hi == _BINS - 1, 2 * _BINS + lo, hi))


def stream_hash(first: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """SplitMix64 hashes of counters ``first[..., None] + positions`` (int64, broadcast)."""
    return mix64((first.unsqueeze(-1) + positions) * GAMMA)


def stream_normals(first: torch.Tensor, positions: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Standard normals for counters ``first[..., None] + positions`` (int64, broadcast), from the
    two-level table of :func:`normal_table` (``table``'s dtype). Plain tensor code: the fused
    kernels that need normals call it inside their own loop."""
    return table[normal_index(stream_hash(first, positions))]


_normals_kernel = compiled(stream_normals, work=lambda first, positions, table: first.numel() * positions.numel(),
                          min_numel=1 << 16)


@compiled(work=lambda first, positions: first.numel() * positions.numel(), min_numel=1 << 16)
def _normal_index_kernel(first: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """:func:`normal_index` of counters ``first[..., None] + positions``."""
    return normal_index(stream_hash(first, positions))


@compiled(work=lambda first, positions: first.numel() * positions.numel())
def _uniforms_kernel(first: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Uniforms on [0, 1) with 53-bit resolution (float64) for counters ``first[..., None] + positions``."""
    return _lsr(stream_hash(first, positions), 11).double() * 2.0 ** -53


_BINS = 1 << TABLE_BITS
_TABLES: dict[tuple, torch.Tensor] = {}


def normal_table(device=None, dtype=torch.float32) -> torch.Tensor:
    """The two-level quantile table of :func:`normal_index`: entries j < 2^16 are
    Phi^-1((j + 1/2) / 2^16) (entries 0 and 2^16 - 1 unused), entries 2^16 + k are
    Phi^-1((k + 1/2) / 2^32) (the lowest bin in 2^16 parts), entries 2^17 + k their mirror images
    in the highest bin, -Phi^-1((2^16 - 1 - k + 1/2) / 2^32)."""
    dev = torch.device(device or "cpu")
    key = (str(dev), dtype)
    if key not in _TABLES:
        j = torch.arange(_BINS, dtype=torch.float64)
        q = torch.cat([(j + 0.5) / _BINS, (j + 0.5) / _BINS ** 2])
        t = torch.special.ndtri(q).to(dtype)
        _TABLES[key] = torch.cat([t, -t[_BINS:].flip(0)]).to(dev)
    return _TABLES[key]


def counter_normals(keys: torch.Tensor, first: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Normals ``[*first.shape, len(positions)]`` (float32) of streams: value j of row i is draw
    ``first[i] + positions[j]`` of the stream whose key ``keys`` broadcasts against ``first``."""
    return _normals_kernel(first + keys, positions, normal_table(first.device))


def stream_counters(key: int, n: int, device=None) -> torch.Tensor:
    """Counters of draws 0 .. n-1 of the stream ``key`` (int64)."""
    return key + torch.arange(n, dtype=torch.int64, device=device)


def normals_at(counters: torch.Tensor) -> torch.Tensor:
    """Standard normals (float64) at the given stream counters (any shape)."""
    zero = torch.zeros(1, dtype=torch.int64, device=counters.device)
    z = _normals_kernel(counters.reshape(-1), zero, normal_table(counters.device, torch.float64))
    return z.view(counters.shape)


def normal_indices_at(counters: torch.Tensor) -> torch.Tensor:
    """:func:`normal_index` of the draws at the given stream counters (any shape): ``normal_table()[i]``
    is :func:`normals_at` of the same counters."""
    zero = torch.zeros(1, dtype=torch.int64, device=counters.device)
    return _normal_index_kernel(counters.reshape(-1), zero).view(counters.shape)


def uniforms_at(counters: torch.Tensor) -> torch.Tensor:
    """Uniforms on [0, 1) (float64, 53-bit) at the given stream counters (any shape)."""
    zero = torch.zeros(1, dtype=torch.int64, device=counters.device)
    return _uniforms_kernel(counters.reshape(-1), zero).view(counters.shape)


def stream_key(*keys) -> int:
    """A 64-bit stream key (as int64) for a purpose, from :func:`imcnoise.seeding.derive_seed`."""
    return _s64(derive_seed(*keys) * 0x9E3779B97F4A7C15)


@dataclass
class ReadNoise:
    """Normals for every read of one column tile of one layer of the chips ``chip_seeds``, on a
    batch of images (``index``: their data-set indices, ``[B]``; ``T`` time steps).

    :meth:`normals` returns one value per read in the reads layout of a tile ``[T*B, K, L, rows]``
    (:mod:`imcnoise.imc.engines.layouts`); the value of a read depends only on (chip seed, run,
    purpose, layer, slot, image index, t, position, tile, row): the read's counter is
    ((index * T + t) * L + position) * tiles + tile) * rows + row, whether the tiles of a layer
    are sensed together or one by one, and whether the samples are sensed together or in chunks
    (``samples``: the reads of samples ``a .. b-1`` of the ``T*B``, sample n = t * B + b).
    """

    chip_seeds: list[int]
    layer: int
    index: torch.Tensor
    T: int
    tile: int = 0
    tiles: int = 1
    samples: tuple[int, int] | None = None  # only samples [a, b) of the T*B (a chunk of the layer's reads)
    run: str = "inference"  # "adaptation": the per-chip adaptation pass's reads, independent of inference's

    def stream(self, purpose: str, slot: int, shape: tuple, device=None):
        """The counters of one normal per read in the reads layout ``shape`` = ``[N, K, L, S, rows]``
        (a layer's S = ``tiles`` sensings) or ``[N, K, L, rows]`` (sensing ``tile`` alone): (key per
        chip ``[K]``, first counter per sample ``[N]``, position counters); read (n, k, l, s, r) has
        counter key[k] + first[n] + ((l * S + s) * rows + r)."""
        if len(shape) == 5:
            N, K, L, S, rows = shape
            tile_idx = torch.arange(S, dtype=torch.int64, device=device).view(1, -1, 1)
        else:
            N, K, L, rows = shape
            S, tile_idx = self.tiles, torch.tensor(self.tile, dtype=torch.int64, device=device).view(1, 1, 1)
        dev = torch.device(device) if device is not None else self.index.device
        name = "read-noise" if self.run == "inference" else f"read-noise-{self.run}"
        keys = torch.tensor([stream_key(chip, name, purpose, self.layer, slot) for chip in self.chip_seeds],
                            dtype=torch.int64, device=dev)  # [K]
        idx = self.index.to(device=dev, dtype=torch.int64)
        t = torch.arange(self.T, dtype=torch.int64, device=dev)
        first = ((idx.view(1, -1) * self.T + t.view(-1, 1)) * (L * S * rows)).reshape(-1)  # [T*B]: each sample's first read
        if self.samples is not None:
            first = first[self.samples[0]:self.samples[1]]
        l = torch.arange(L, dtype=torch.int64, device=dev).view(-1, 1, 1)
        r = torch.arange(rows, dtype=torch.int64, device=dev).view(1, 1, -1)
        positions = (l * S + tile_idx.to(dev)) * rows + r  # [L, S or 1, rows]
        return keys, first, positions

    def normals(self, purpose: str, slot: int, shape: tuple, device=None) -> torch.Tensor:
        """One normal per read, in ``shape`` (:meth:`stream`)."""
        keys, first, positions = self.stream(purpose, slot, shape, device)
        z = _normals_kernel(first.view(-1, 1) + keys.view(1, -1), positions.reshape(-1), normal_table(first.device))
        return z.view(shape)
