"""VGG11 layer plan and the paper's residual schedule.

Layer numbering (1-based, the paper's "11-layer CNN"; 8 convolutions + 3 fully connected):

    layer  kind  channels (width 1.0)   input size   then
      1    conv  in -> 64   FP          32           OR-pool 2
      2    conv  64 -> 128  binary      16           OR-pool 2
      3    conv  128 -> 256 binary       8
      4    conv  256 -> 256 binary       8           OR-pool 2
      5    conv  256 -> 512 binary       4
      6    conv  512 -> 512 binary       4           OR-pool 2
      7    conv  512 -> 512 binary       2
      8    conv  512 -> 512 binary       2           OR-pool 2
      9    fc    512 -> 4096 binary     (flattened 512 x 1 x 1)
     10    fc    4096 -> 4096 binary
     11    fc    4096 -> classes  FP, output layer (membrane accumulated, no firing)

(VGG-A of Simonyan & Zisserman with the 5 max-pools for 32x32 input.) Channel counts scale with
the width multiplier; the first and last layers keep full-precision weights (paper Sec. II).

Residual schedule "1-2-3, 2-3-4, 3-4-5, 4-5-6, 5-6-7, 7-8-9" (paper Sec. IV, Fig. 1): in a triple
a-b-c, layer c receives, besides layer b's spikes, the spikes of layer a = c - 2 (f = 1 in eq. 5).
So layers 3, 4, 5, 6, 7 and 9 have a residual input from layers 1, 2, 3, 4, 5 and 7.

Identity mapping where shapes differ (parameter-free, keeps every value binary so it can drive
an XNOR array): the source layer's spikes (before its own pooling) are OR-pooled (max-pool) by
the ratio of spatial sizes, and channels are *repeated* (c -> c mod C_src) up to the destination
width. Repetition rather than zero padding keeps the mapping identical for unipolar spikes (B-SNN)
and bipolar +-1 activations (BNN), which have no "0" value.
"""

from __future__ import annotations

from dataclasses import dataclass

VGG11_CONV = (64, 128, 256, 256, 512, 512, 512, 512)
VGG11_POOL_AFTER = (True, True, False, True, False, True, False, True)
VGG11_FC = 4096
PAPER_SCHEDULE = ((1, 3), (2, 4), (3, 5), (4, 6), (5, 7), (7, 9))


@dataclass(frozen=True)
class LayerSpec:
    index: int  # paper numbering, 1-based
    kind: str  # "conv" | "fc"
    in_features: int  # channels (conv) or features (fc)
    out_features: int
    in_size: int  # spatial size of the input (conv) / of the pre-flatten input (first fc)
    pool_after: bool
    binary: bool
    output: bool  # the last layer: accumulates membrane, no neuron
    residual_from: int | None = None
    residual_pool: int = 1  # OR-pool factor applied to the source spikes
    residual_repeat: int = 1  # channel repetition factor


def parse_schedule(text: str | None) -> tuple[tuple[int, int], ...]:
    """``"paper"`` (default), ``"none"``, or ``"1-3,2-4"`` / ``"1-2-3,2-3-4"`` style lists."""
    if text is None or text == "paper":
        return PAPER_SCHEDULE
    if text in ("none", ""):
        return ()
    pairs = []
    for item in text.split(","):
        parts = [p.strip() for p in item.strip().split("-")]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"residual schedule item {item!r}: expected numbers like '1-3' or '1-2-3'") from None
        if len(nums) not in (2, 3) or (len(nums) == 3 and not (nums[1] == nums[0] + 1 and nums[2] == nums[1] + 1)):
            raise ValueError(f"residual schedule item {item!r}: expected 'a-c' or three consecutive layers 'a-b-c'")
        pairs.append((nums[0], nums[-1]))
    return tuple(pairs)


def schedule_text(schedule: tuple[tuple[int, int], ...]) -> str:
    if schedule == PAPER_SCHEDULE:
        return "paper"
    return ",".join(f"{a}-{b}" for a, b in schedule) or "none"


def vgg11_plan(width: float = 1.0, in_channels: int = 3, image_size: int = 32, num_classes: int = 10,
               schedule: tuple[tuple[int, int], ...] = PAPER_SCHEDULE) -> list[LayerSpec]:
    """The 11 layers with shapes and residual wiring; validates the schedule."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if image_size % 32 != 0:
        raise ValueError(f"image_size must be a multiple of 32 (5 pooling stages), got {image_size}")
    conv = [max(1, round(c * width)) for c in VGG11_CONV]
    fc = max(1, round(VGG11_FC * width))
    specs: list[dict] = []
    size, ch = image_size, in_channels
    out_sizes = {}
    for i, (c, pool) in enumerate(zip(conv, VGG11_POOL_AFTER), start=1):
        specs.append(dict(index=i, kind="conv", in_features=ch, out_features=c, in_size=size, pool_after=pool,
                          binary=i != 1, output=False))
        out_sizes[i] = (c, size)
        ch, size = c, size // 2 if pool else size
    flat = ch * size * size
    specs.append(dict(index=9, kind="fc", in_features=flat, out_features=fc, in_size=size, pool_after=False, binary=True, output=False))
    out_sizes[9] = (fc, 1)
    specs.append(dict(index=10, kind="fc", in_features=fc, out_features=fc, in_size=1, pool_after=False, binary=True, output=False))
    out_sizes[10] = (fc, 1)
    specs.append(dict(index=11, kind="fc", in_features=fc, out_features=num_classes, in_size=1, pool_after=False, binary=False, output=True))

    by_index = {s["index"]: s for s in specs}
    seen = set()
    for src, dst in schedule:
        if dst - src != 2:
            raise ValueError(f"residual {src}->{dst}: the paper's identity mapping connects layer l-2 to l only")
        if dst not in by_index or not by_index[dst]["binary"]:
            raise ValueError(f"residual {src}->{dst}: destination must be a binary layer (2..10)")
        if src < 1 or dst in seen:
            raise ValueError(f"residual {src}->{dst}: invalid or duplicate destination")
        seen.add(dst)
        d = by_index[dst]
        src_c, src_size = out_sizes[src]
        if d["kind"] == "conv":
            dst_c, dst_size = d["in_features"], d["in_size"]
        else:  # first fc: match the pre-flatten map of the previous conv after pooling
            if by_index[dst - 1]["kind"] == "conv":
                dst_c, dst_size = by_index[dst - 1]["out_features"], d["in_size"]
            else:
                dst_c, dst_size = d["in_features"], 1
        if src_size % dst_size or dst_c % src_c:
            raise ValueError(f"residual {src}->{dst}: cannot map {src_c}x{src_size}x{src_size} onto {dst_c}x{dst_size}x{dst_size} "
                             "by OR-pooling and channel repetition")
        d.update(residual_from=src, residual_pool=src_size // dst_size, residual_repeat=dst_c // src_c)
    return [LayerSpec(**s) for s in specs]


def residual_sources(plan: list[LayerSpec]) -> set[int]:
    return {s.residual_from for s in plan if s.residual_from is not None}
