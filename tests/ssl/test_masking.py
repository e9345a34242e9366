import pytest
import torch

from endofm.ssl.masking import BlockMaskConfig, block_mask_2d, crop_masks, view_masks


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("num", [8, 40, 98])
def test_block_mask_reaches_about_the_target_never_more(num):
    cfg = BlockMaskConfig()
    counts = [int(block_mask_2d(14, 14, num, cfg, gen(s)).sum()) for s in range(20)]
    assert max(counts) <= num
    assert sum(counts) / len(counts) >= 0.8 * num


def test_blocks_are_rectangles_of_the_aspect_setting():
    for seed in range(5):
        mask = block_mask_2d(14, 14, 9, BlockMaskConfig(min_aspect=1.0, min_block=9), gen(seed))
        rows, cols = mask.any(dim=1).sum(), mask.any(dim=0).sum()
        assert mask.sum() == rows * cols == 9 and rows == cols  # one 3x3 square block
    tall = BlockMaskConfig(min_aspect=0.25, min_block=16)
    shapes = {(int(m.any(dim=1).sum()), int(m.any(dim=0).sum()))
              for m in (block_mask_2d(14, 14, 16, tall, gen(s)) for s in range(20))}
    assert len(shapes) > 1  # other aspect ratios are drawn


def test_fraction_of_masked_crops_and_ratio_range():
    cfg = BlockMaskConfig(ratio_range=(0.2, 0.4), probability=0.5)
    masks = crop_masks([2] * 8, 8, 8, cfg, gen())
    counts = sorted(int(m.sum()) // 2 for m in masks)  # per frame (tube: 2 equal frames)
    assert counts[:4] == [0, 0, 0, 0] and all(c > 0 for c in counts[4:])
    assert max(counts) <= int(0.4 * 64)
    none = crop_masks([2] * 8, 8, 8, BlockMaskConfig(probability=0.0), gen())
    assert not any(m.any() for m in none)


def test_tube_masks_repeat_over_frames_in_token_order():
    cfg = BlockMaskConfig(probability=1.0, mode="tube")
    (mask,) = crop_masks([3], 6, 5, cfg, gen(1))
    grid = mask.reshape(6, 5, 3)  # token order (h, w, t), t fastest
    assert grid.any()
    for t in range(3):
        assert torch.equal(grid[..., t], grid[..., 0])


def test_frame_masks_differ_between_frames_with_the_clip_ratio():
    cfg = BlockMaskConfig(ratio_range=(0.3, 0.3), probability=1.0, mode="frame")
    (mask,) = crop_masks([4], 8, 8, cfg, gen(2))
    grid = mask.reshape(8, 8, 4)
    per_frame = [int(grid[..., t].sum()) for t in range(4)]
    assert all(0 < c <= int(0.3 * 64) for c in per_frame)
    assert any(not torch.equal(grid[..., t], grid[..., 0]) for t in range(1, 4))


def test_view_masks_shapes_and_draw_over_all_crops():
    cfg = BlockMaskConfig(probability=0.5)
    masks = view_masks(1, [2, 4], 4, 4, cfg, gen())  # batch 1: one of the 2 crops masked
    assert [tuple(m.shape) for m in masks] == [(1, 32), (1, 64)]
    assert sum(bool(m.any()) for m in masks) == 1
    again = view_masks(1, [2, 4], 4, 4, cfg, gen())
    assert all(torch.equal(a, b) for a, b in zip(masks, again, strict=True))


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="ratio"):
        BlockMaskConfig(ratio_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="mode"):
        BlockMaskConfig(mode="random")
    with pytest.raises(ValueError, match="probability"):
        BlockMaskConfig(probability=1.5)
