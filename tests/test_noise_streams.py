"""Counter-based random numbers and compiled kernels (issue 12): statistics, keys, exactness."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from imcnoise.imc.engines.base import folded_neuron
from imcnoise.imc.physics import noise
from imcnoise.imc.physics.noise import ReadNoise, normal_table, normals_at, stream_counters, stream_key, uniforms_at
from imcnoise.runtime import compiled

N = 2_000_000


def _z(key=7, n=N):
    return normals_at(stream_counters(stream_key(key, "test"), n))


def test_normals_have_the_moments_and_tails_of_a_standard_normal():
    z = _z()
    assert abs(float(z.mean())) < 5 / math.sqrt(N)
    assert abs(float(z.std()) - 1) < 5 / math.sqrt(2 * N)
    assert abs(float(stats.skew(z.numpy()))) < 5 * math.sqrt(6 / N)
    assert abs(float(stats.kurtosis(z.numpy()))) < 5 * math.sqrt(24 / N)
    for k in (1.0, 2.0, 3.0, 4.0):  # two-sided tail masses, binomial bounds
        p = 2 * stats.norm.sf(k)
        got = float((z.abs() > k).double().mean())
        assert abs(got - p) < 5 * math.sqrt(p * (1 - p) / N) + 1 / 2 ** 16, k
    # the refined outer bins reach beyond the main table's 4.17 sigma, to 6.3 sigma
    t = normal_table(dtype=torch.float64)
    assert float(t[2 ** 16:].min()) < -6.3 and float(t[1:2 ** 16 - 1].min()) > -4.2
    assert float(z.abs().max()) > 4.5  # 2 M draws: P(|z| > 4.5) * N ~ 14
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 1e-4


def test_uniforms_are_uniform():
    u = uniforms_at(stream_counters(stream_key(3, "u"), N))
    assert float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / N)
    counts = torch.histc(u.float(), bins=100, min=0, max=1)
    assert stats.chisquare(counts.numpy()).pvalue > 1e-4
    for p in (1e-4, 1e-3, 0.01):  # fault probabilities: exact tail masses
        assert abs(float((u < p).double().mean()) - p) < 5 * math.sqrt(p / N)


def test_streams_are_independent_across_keys_and_along_positions():
    n = 200_000
    keys = [stream_key(1, "read-noise", "ktc", 3, 0), stream_key(2, "read-noise", "ktc", 3, 0),
            stream_key(1, "read-noise", "sense", 3, 0), stream_key(1, "read-noise", "ktc", 4, 0),
            stream_key(1, "read-noise", "ktc", 3, 1)]
    zs = torch.stack([normals_at(stream_counters(k, n)) for k in keys])
    c = torch.corrcoef(zs)
    assert float(c[~torch.eye(len(keys), dtype=torch.bool)].abs().max()) < 5 / math.sqrt(n)
    z = zs[0]
    for lag in (1, 2, 7, 64):
        r = float(torch.corrcoef(torch.stack([z[:-lag], z[lag:]]))[0, 1])
        assert abs(r) < 5 / math.sqrt(n), lag


def test_read_noise_depends_only_on_the_read_not_on_batching_or_tiling():
    """A read's value is a function of (chip, purpose, layer, slot, image, t, position, tile, row)."""
    full = ReadNoise([11, 12], layer=5, index=torch.arange(10, 16), T=3, tile=1, tiles=3)
    z = full.normals("ktc", 0, (18, 2, 4, 8))  # [T*B, K, L, rows]
    part = ReadNoise([12], layer=5, index=torch.tensor([13, 14]), T=3, tile=1, tiles=3).normals("ktc", 0, (6, 1, 4, 8))
    zz = z.view(3, 6, 2, 4, 8)[:, 3:5, 1:2].reshape(6, 1, 4, 8)  # images 13, 14 of chip 12
    assert torch.equal(part, zz)
    other_tile = ReadNoise([11, 12], layer=5, index=torch.arange(10, 16), T=3, tile=2, tiles=3).normals("ktc", 0, (18, 2, 4, 8))
    assert not torch.equal(other_tile, z)
    assert not torch.equal(full.normals("ktc", 1, (18, 2, 4, 8)), z)  # slot
    assert not torch.equal(full.normals("sense", 0, (18, 2, 4, 8)), z)  # purpose


def test_compiled_kernels_equal_eager_ones_bit_for_bit(monkeypatch):
    """Every fused kernel gives the same bits compiled and eagerly -- and the compiled code ran:
    each call counts where it went (runtime.compiled.calls); where compilation cannot work here
    (IMCNOISE_COMPILE=0 or no C++ compiler in CI) the test fails instead of comparing eager with eager."""
    monkeypatch.setenv("IMCNOISE_COMPILE_MIN", "1")  # compile even these small inputs
    from imcnoise.imc.engines import base
    from imcnoise.imc.physics import sense as sp

    first = torch.randint(0, 2 ** 62, (3, 5, 1))
    pos = torch.arange(4000)
    table = normal_table()
    for k in (noise._normals_kernel, noise._uniforms_kernel, base._if_kernel, base._sign_kernel, sp._segment):
        k.calls["compiled"] = 0
    assert torch.equal(noise._normals_kernel(first, pos, table), noise._normals_kernel.fn(first, pos, table))
    assert torch.equal(noise._uniforms_kernel(first, pos), noise._uniforms_kernel.fn(first, pos))
    # the folded neuron: fp64 charge / fire / reset, compiled and eager
    g = torch.Generator().manual_seed(0)
    dot = torch.randint(0, 200, (8 * 6, 2, 9, 16), generator=g).float()
    bias = torch.rand(16, generator=g, dtype=torch.float64) * 100
    theta = torch.rand(16, generator=g, dtype=torch.float64) * 30 + 0.5
    gain = (torch.rand(16, generator=g) > 0.2).double()
    for kernel in (base._if_kernel, base._sign_kernel):
        for gn in (None, gain):
            d = dot.view(8, 6, 2, 9, 16)
            a, ones_a = kernel(d, gn, bias, theta)
            b, ones_b = kernel.fn(d, gn, bias, theta)
            assert torch.equal(a, b) and torch.equal(ones_a, ones_b)
    # per-chip registers of adapted chips ([K, 1, rows]: each chip its own bias and threshold)
    chip_bias, chip_theta = bias + torch.arange(2.0, dtype=torch.float64).view(2, 1, 1), theta.expand(2, 1, 16) * 1.5
    for kernel in (base._if_kernel, base._sign_kernel):
        d = dot.view(8, 6, 2, 9, 16)
        a, ones_a = kernel(d, gain, chip_bias, chip_theta)
        b, ones_b = kernel.fn(d, gain, chip_bias, chip_theta)
        assert torch.equal(a, b) and torch.equal(ones_a, ones_b)
    out, ones = folded_neuron(dot, 8, None, bias, theta, "if")
    assert out.shape == (8, 6, 2, 9, 16) and torch.equal(ones, out.sum(dim=(0, 1, 3, 4)).long())
    # the sense path's fused segments: inexact float divisions, ADC steps, clipping, the float64 sum
    sig = torch.rand(40, 1, 6, 3, 8, generator=g) * 60
    args = {"lsb": torch.rand(1, 1, 3, 8, generator=g) + 0.4, "gain": 1 + 0.01 * torch.randn(1, 1, 3, 8, generator=g),
            "shift": torch.randn(1, 1, 3, 8, generator=g) * 30, "s1": torch.rand(40, 1, 6, 3, 8, generator=g) * 60,
            "step": torch.tensor([[64 / 63], [1.0], [128 / 63]]), "fs": torch.tensor([[64.0], [40.0], [128.0]])}
    for ops in (("counts", "hold"), ("add_slot", "shift", "adc", "clip", "sum"), ("counts", "shift", "adc", "clip", "sum")):
        assert torch.equal(sp._segment(sig, ops, args), sp._segment.fn(sig, ops, args)), ops
    for k in (noise._normals_kernel, noise._uniforms_kernel, base._if_kernel, base._sign_kernel, sp._segment):
        assert k.calls["compiled"] > 0, f"{k.__name__} did not run compiled"


def test_compiled_runs_eagerly_when_off_and_keeps_a_kernels_own_errors(monkeypatch):
    monkeypatch.setenv("IMCNOISE_COMPILE", "0")
    f = compiled(lambda x: x * 2 + 1)
    assert torch.equal(f(torch.arange(3)), torch.tensor([1, 3, 5])) and f.calls == {"compiled": 0, "eager": 1}
    monkeypatch.setenv("IMCNOISE_COMPILE", "1")
    monkeypatch.setenv("IMCNOISE_COMPILE_MIN", "1")

    def bad(x):
        return x.view(7)  # a shape error: the function's own, raised eagerly too

    g = compiled(bad)
    with pytest.raises(RuntimeError):
        g(torch.arange(3))
    assert not g._failed  # an error of the function itself does not switch compilation off


def test_numbers_do_not_depend_on_how_the_counters_are_laid_out():
    """A draw is a function of its counter alone: the same counters as one flat vector, as a 2-D
    broadcast (first + positions) and in another order give the same normals; and the device
    (CUDA where there is one) gives the same bits as the CPU."""
    c = stream_counters(stream_key(5, "d"), 10_000)
    flat = normals_at(c)
    grid = noise._normals_kernel(c[::100].view(-1, 1), torch.arange(100), normal_table()).reshape(-1)
    assert torch.equal(grid, flat.float())
    perm = torch.randperm(10_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(normals_at(c[perm]), flat[perm])
    if torch.cuda.is_available():
        assert torch.equal(normals_at(c.cuda()).cpu(), flat)


def test_compiled_functions_keep_their_graph_limit_in_every_thread(monkeypatch):
    """torch's dynamo configuration is per thread: a compiled function first called in one thread and
    then in another (a Dask worker's task threads) must still get RECOMPILE_LIMIT graphs there, not
    torch's default 8 (past which it silently ran eagerly, measured in a --workers 2 sweep)."""
    import threading

    import torch._dynamo.config as dynamo

    from imcnoise.runtime import RECOMPILE_LIMIT, compiled

    monkeypatch.setenv("IMCNOISE_COMPILE_MIN", "1")
    f = compiled(lambda x: x * 2 + 1)
    x = torch.arange(8.0)
    assert torch.equal(f(x), x * 2 + 1)  # compiled here, in the main thread
    seen = {}

    def other():
        seen["before"] = dynamo.recompile_limit
        seen["out"] = f(x)
        seen["after"] = dynamo.recompile_limit

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen["before"] < RECOMPILE_LIMIT  # a fresh thread starts at torch's default
    assert seen["after"] == RECOMPILE_LIMIT and torch.equal(seen["out"], x * 2 + 1) and f.calls["compiled"] >= 2
