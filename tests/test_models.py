"""B-SNN / BNN building blocks (paper Sec. II, Alg. 1) and the VGG11 topology."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from imcnoise.models.binary import BinaryConv2d, BinaryLinear
from imcnoise.models.encoding import poisson_spikes
from imcnoise.models.neurons import IFNeuron, if_multistep
from imcnoise.models.surrogate import triangle_surrogate
from imcnoise.models.topology import PAPER_SCHEDULE, parse_schedule, vgg11_plan
from imcnoise.models.vgg import BinaryVGG11, ModelConfig, Recording, identity_map

from helpers import calibrated_model


def test_surrogate_gradient_matches_eq4_at_chosen_points():
    theta, delta = 1.0, 0.3
    u = torch.tensor([1.0, 0.5, 1.5, 0.0, 2.0, -1.0, 1.25, 3.0])
    expected = torch.tensor([0.3, 0.15, 0.15, 0.0, 0.0, 0.0, 0.225, 0.0])
    assert torch.allclose(triangle_surrogate(u, theta, delta), expected)
    # through the neuron's autograd: one time step, d o / d x = d o / d u at u = x
    x = u.clone().view(1, -1).requires_grad_(True)
    spikes, _ = IFNeuron(theta, delta)(x)
    spikes.sum().backward()
    assert torch.allclose(x.grad.view(-1), expected)
    # another threshold: the triangle is scaled by theta (eq. 4)
    assert torch.allclose(triangle_surrogate(torch.tensor([2.0, 3.0, 1.0]), 2.0, 0.3), torch.tensor([0.3, 0.15, 0.15]))


def test_backward_over_time_is_reverse_cumsum_of_eq3():
    torch.manual_seed(0)
    x = torch.randn(6, 5, requires_grad=True)
    w = torch.randn(6, 5)
    spikes, _ = IFNeuron(1.0, 0.3)(x)
    (spikes * w).sum().backward()
    # manual eq. (3) with detached reset: dL/du_t = w_t sg(u_t) + dL/du_{t+1}
    with torch.no_grad():
        v = torch.zeros(5)
        sg = []
        for t in range(6):
            v = v + x[t]
            sg.append(triangle_surrogate(v, 1.0, 0.3))
            v = v - (v > 1.0).float()
        g = torch.zeros(5)
        grads = [None] * 6
        for t in reversed(range(6)):
            g = w[t] * sg[t] + g
            grads[t] = g.clone()
    assert torch.allclose(x.grad, torch.stack(grads))


def test_soft_reset_keeps_residual_charge():
    x = torch.tensor([[1.5], [0.6], [0.0], [0.95], [2.5]])
    spikes, mem = if_multistep(x, 1.0, record_membrane=True)
    # u: 1.5 -> fire, keep 0.5; +0.6 = 1.1 -> fire, keep 0.1; 0.1 -> no; +0.95 = 1.05 -> fire, keep 0.05; +2.5 = 2.55 -> fire, keep 1.55
    assert spikes.view(-1).tolist() == [1, 1, 0, 1, 1]
    assert torch.allclose(mem.view(-1), torch.tensor([1.5, 1.1, 0.1, 1.05, 2.55]))
    # exactly at threshold does not fire (strict comparison, Alg. 2 line 13)
    s, _ = if_multistep(torch.tensor([[1.0]]), 1.0)
    assert s.item() == 0


def test_poisson_rate_matches_intensity():
    values = torch.tensor([0, 1, 32, 128, 200, 254, 255], dtype=torch.uint8)
    n = 20000
    images = values.view(1, 1, 1, -1).expand(n, 1, 1, -1).contiguous()
    spikes = poisson_spikes(images, torch.arange(n), 4, seed=123)  # [T, N, 1, 1, 7]
    rate = spikes.mean(dim=(0, 1, 2, 3))
    p = values.double() / 255
    se = torch.sqrt(p * (1 - p) / (4 * n)).clamp(min=1e-12)
    z = (rate.double() - p).abs() / se
    assert rate[0] == 0 and rate[-1] == 1
    assert (z[1:-1] < 4.5).all(), z  # 4.5 sigma: a false alarm has probability < 1e-5
    # time steps and pixels are independent: correlation of consecutive steps ~ 0
    s = spikes[:, :, 0, 0, 3].double()
    corr = torch.corrcoef(torch.stack([s[0], s[1]]))[0, 1]
    assert abs(float(corr)) < 4.5 / math.sqrt(n)


def test_poisson_spikes_depend_only_on_seed_and_index():
    imgs = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    full = poisson_spikes(imgs, torch.arange(10), 8, 7)
    part = poisson_spikes(imgs[3:6], torch.arange(3, 6), 8, 7)
    assert torch.equal(full[:, 3:6], part)
    assert not torch.equal(poisson_spikes(imgs, torch.arange(10), 8, 8), full)


def test_binary_layers_forward_with_exactly_plus_minus_alpha():
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 6)
    x = (torch.rand(2, 4, 5, 5) < 0.5).float()
    wb = conv.binary_weight()
    assert set(wb.unique().tolist()) <= {-1.0, 1.0}
    alpha = conv.weight.abs().flatten(1).mean(1)
    ref = F.conv2d(x, alpha.view(-1, 1, 1, 1) * torch.sign(conv.weight + (conv.weight == 0)), padding=1)
    assert torch.allclose(conv([x]), ref, atol=1e-6)
    lin = BinaryLinear(7, 3)
    xl = torch.rand(2, 7).round()
    alpha = lin.weight.abs().mean(1)
    assert torch.allclose(lin([xl]), xl @ (alpha[:, None] * torch.where(lin.weight >= 0, 1.0, -1.0)).T, atol=1e-6)
    # the STE passes gradient only where |w| <= 1 (alpha frozen to isolate the sign path)
    lin.weight.data[0, 0] = 1.5
    lin.weight.data[0, 1] = 0.5
    lin.freeze(lin.alpha().detach())
    lin([torch.ones(1, 7)]).sum().backward()
    assert lin.weight.grad[0, 0] == 0 and lin.weight.grad[0, 1] != 0


def test_residual_schedule_wiring_matches_documentation():
    plan = vgg11_plan(1.0, 3, 32, 100, PAPER_SCHEDULE)
    assert [s.index for s in plan] == list(range(1, 12))
    assert {s.index: s.residual_from for s in plan if s.residual_from} == {3: 1, 4: 2, 5: 3, 6: 4, 7: 5, 9: 7}
    assert [s.binary for s in plan] == [False] + [True] * 9 + [False]
    assert [s.out_features for s in plan] == [64, 128, 256, 256, 512, 512, 512, 512, 4096, 4096, 100]
    by = {s.index: s for s in plan}
    assert (by[3].residual_pool, by[3].residual_repeat) == (4, 2)  # 64@32x32 -> 128@8x8
    assert (by[9].residual_pool, by[9].residual_repeat) == (2, 1)  # conv7 512@2x2 -> fc9 input 512
    assert parse_schedule("1-2-3,2-3-4") == ((1, 3), (2, 4))
    assert all(s.residual_from is None for s in vgg11_plan(0.25, 1, 32, 10, parse_schedule("none")))
    with pytest.raises(ValueError, match="l-2"):
        vgg11_plan(0.25, 1, 32, 10, ((1, 4),))


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_residual_inputs_are_binary_second_macs(kind, monkeypatch):
    model = calibrated_model(kind, timesteps=2)
    seen = {}
    for spec, layer in zip(model.plan, model.layers):
        if spec.binary:
            orig = layer.forward

            def capture(inputs, fuse_inputs=True, _i=spec.index, _orig=orig):
                seen[_i] = [t.clone() for t in inputs]
                return _orig(inputs, fuse_inputs)

            monkeypatch.setattr(layer, "forward", capture)
    x = (torch.rand(2, 3, 1, 32, 32) < 0.3).float() if kind == "bsnn" else torch.randn(1, 3, 1, 32, 32)
    rec = Recording(keep=True)
    model(x, rec)
    by = {s.index: s for s in model.plan}
    values = {0.0, 1.0} if kind == "bsnn" else {-1.0, 1.0}
    for dst, inputs in seen.items():
        assert len(inputs) == (2 if by[dst].residual_from else 1)
        for t in inputs:
            assert set(t.unique().tolist()) <= values  # every array input is binary
        if by[dst].residual_from:
            src = rec.spikes[by[dst].residual_from].flatten(0, 1)
            assert torch.equal(inputs[1], identity_map(src, by[dst]))


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_fused_residual_equals_separate_macs(kind):
    model = calibrated_model(kind).double()
    x = (torch.rand(4, 2, 1, 32, 32) < 0.3).double() if kind == "bsnn" else torch.randn(1, 2, 1, 32, 32).double()
    a = model(x)
    model.fuse_residual = False
    assert torch.equal(a, model(x))


def test_batch_norm_is_shared_across_time_steps():
    """One mu, sigma per channel over all T x B samples of a step (not one per time step): the
    running statistics after one training-mode pass are the moments of the whole [T*B] batch."""
    model = BinaryVGG11(ModelConfig(width=0.125, timesteps=4, in_channels=1))
    bn = model.norms[1]
    assert bn.running_mean.shape == (model.plan[1].out_features,)  # one mu, sigma per channel, not per t
    seen = {}
    model.layers[1].register_forward_hook(lambda mod, inp, out: seen.setdefault("z", out.detach().clone()))
    bn.momentum = 1.0  # running stats = this batch's
    model.train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model((torch.rand(4, 6, 1, 32, 32, generator=g) < 0.3).float())
    z = seen["z"]  # [T*B, C, H, W]: every time step of every image
    assert z.shape[0] == 4 * 6
    torch.testing.assert_close(bn.running_mean, z.mean(dim=(0, 2, 3)))
    n = z.numel() / z.shape[1]
    torch.testing.assert_close(bn.running_var, z.var(dim=(0, 2, 3), unbiased=False) * n / (n - 1))
    per_t = z.view(4, 6, *z.shape[1:]).mean(dim=(1, 3, 4))  # the time steps differ: sharing matters
    assert float((per_t - per_t.mean(0)).abs().max()) > 1e-3
