"""Shapes, masking, the causal mask, FiLM and the losses of the chapter's models."""

import pytest
import torch
from learner.utils import dot_position, preprocess_frame, ring_error
from robots import ToroidalDotConfig, ToroidalDotEnvironment

from models import (
    MASK_RATIO_MAX,
    MASK_RATIO_MIN,
    ConvAutoencoder,
    MaskedAutoencoderViT,
    TransformerActionConditionedPredictor,
    predictor_losses,
)


def dot_batch(n: int, seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n (frame, action, next frame) triples of the toroidal dot: (n, 3, size, size), (n,), (n, 3, ...)."""
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=seed))
    x, a, y = [], [], []
    for i in range(n):
        x.append(preprocess_frame(env.reset()[0], size))
        a.append(i % 2)
        y.append(preprocess_frame(env.step(i % 2)[0], size))
    return torch.stack(x), torch.tensor(a), torch.stack(y)


@pytest.mark.parametrize("codec", [ConvAutoencoder(), MaskedAutoencoderViT()])
def test_codec_shapes_and_bad_input(codec):
    x = torch.rand(2, 3, 64, 64)
    z = codec.encode(x)
    assert z.shape == (2, 64, 64)
    assert codec.decode(z).shape == (2, 3, 64, 64)
    loss, recon, info = codec.reconstruction_loss(x)
    assert loss.ndim == 0 and recon.shape == x.shape
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        codec.encode(torch.rand(2, 3, 32, 32))


def test_mae_mask_ratio_is_drawn_in_range():
    mae = MaskedAutoencoderViT()
    ratios = {mae.reconstruction_loss(torch.rand(1, 3, 64, 64))[2]["mask_ratio"] for _ in range(20)}
    assert all(MASK_RATIO_MIN - 0.02 <= r <= MASK_RATIO_MAX + 0.02 for r in ratios) and len(ratios) > 3


def test_predictor_shapes_causal_attention_and_errors():
    p = TransformerActionConditionedPredictor(64, 64, [(0.0, 1.0)], 2)
    z, a = torch.randn(2, 3, 64, 64), torch.rand(2, 3, 1)
    z_next, attns = p(z, a, return_attn=True)
    assert z_next.shape == (2, 64, 64) and len(attns) == 4
    assert attns[0].shape == (2, 4, p.seq_len, p.seq_len)
    first_block = p.n_merged + 1  # tokens of step 0 may not look at steps 1 and 2
    assert attns[0][:, :, :first_block, first_block:].abs().max() == 0
    assert torch.allclose(attns[2].sum(-1), torch.ones(()))
    with pytest.raises(ValueError, match="z_hist"):
        p(torch.randn(2, 2, 64, 64), a[:, :2])
    with pytest.raises(ValueError, match="cap"):
        TransformerActionConditionedPredictor(4096, 8, [(0.0, 1.0)], 2, merge=1)


def test_film_changes_features_with_the_action():
    torch.manual_seed(0)
    p = TransformerActionConditionedPredictor(64, 64, [(0.0, 1.0)], 2)
    seen = {}
    p.films["0"].register_forward_hook(lambda m, inp, out: seen.__setitem__("film", (inp[0], out)))
    z = torch.randn(1, 3, 64, 64)
    outs = []
    for act in (0.0, 1.0):
        p(z, torch.tensor([[[0.0], [1.0], [act]]]))
        x_in, x_out = seen["film"]
        outs.append(x_out[:, -(p.n_merged + 1) :] - x_in[:, -(p.n_merged + 1) :])  # FiLM's own change
    assert (outs[0] - outs[1]).abs().mean() > 1e-3 * outs[0].abs().mean()


def test_concat_conditioning_has_no_film_and_still_hears_the_action():
    torch.manual_seed(0)
    p = TransformerActionConditionedPredictor(64, 64, [(0.0, 1.0)], 2, conditioning="concat")
    assert len(p.films) == 0 and p.in_proj.in_features == 4 * 64 + 64  # merged tokens + action embedding
    torch.nn.init.normal_(p.delta_head.weight, std=0.02)  # the head starts at zero: make it speak
    z = torch.randn(1, 3, 64, 64)
    outs = [p(z, torch.tensor([[[0.0], [1.0], [act]]])) for act in (0.0, 1.0)]
    assert (outs[0] - outs[1]).abs().mean() > 1e-4
    with pytest.raises(ValueError, match="conditioning"):
        TransformerActionConditionedPredictor(64, 64, [(0.0, 1.0)], 2, conditioning="sum")


def test_attention_metrics_keep_the_seed_meanings():
    from learner.evaluation import attention_metrics, uniform_attention_metrics

    m, h = 16, 3
    seq = h * (m + 1)  # [z_0 (16 tokens) | a_0 | z_1 | a_1 | z_2 | a_2], as in the default predictor
    uniform = torch.full((1, 2, seq, seq), 1 / seq)
    got = attention_metrics([uniform], m, h)
    for k, v in uniform_attention_metrics(m, h).items():
        assert abs(float(got[k][0]) - v) < 1e-5, k
    on_action = torch.zeros(1, 2, seq, seq)
    on_action[..., seq - 1] = 1.0  # every query looks only at the previous action a_2
    got = attention_metrics([uniform, on_action], m, h)  # the last layer counts
    assert float(got["APA"][0]) == 1.0 and float(got["ALF"][0]) == 0.0 and float(got["TTAR"][0]) > 1e6
    on_old_frame = torch.zeros(1, 2, seq, seq)
    on_old_frame[..., 0] = 1.0  # ... or only at the oldest frame's first token
    got = attention_metrics([on_old_frame], m, h)
    assert float(got["RI@16"][0]) == 0.0 and float(got["TTAR"][0]) == 0.0 and float(got["APA"][0]) == 0.0
    on_last_frame = torch.zeros(1, 2, seq, seq)
    on_last_frame[..., seq - 2] = 1.0  # ... or only at a token of the last frame
    assert float(attention_metrics([on_last_frame], m, h)["ALF"][0]) == 1.0


def test_action_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    codec = ConvAutoencoder(img_size=32, latent_dim=32, ch=8)  # small: the behaviour, not the quality
    p = TransformerActionConditionedPredictor(16, 32, [(0.0, 1.0)], 2, dim=32)
    x, a, y = dot_batch(8, size=32)
    opt = torch.optim.Adam(list(codec.parameters()) + list(p.parameters()), lr=3e-3)
    hist_a = torch.stack([torch.zeros(8), torch.zeros(8), a.float()], dim=1)[..., None]  # (B, 3, 1)
    first = None
    for _ in range(40):
        z = codec.encode(x)
        z_pred = p(torch.stack([z, z, z], dim=1), hist_a)
        pf = codec.decode(z_pred)
        losses = predictor_losses(pf, y, z_pred, codec.encode(y), p.classifier(pf - x), a)
        first = first if first is not None else float(losses["action"].detach())
        opt.zero_grad()
        (losses["total"] + codec.reconstruction_loss(x)[0]).backward()
        opt.step()
    last = float(losses["action"].detach())
    assert last < 0.5 * first, (first, last)


def test_dot_locator_finds_the_true_dot_within_a_pixel():
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=3))
    frames, pos = [], []
    for _ in range(50):
        frames.append(preprocess_frame(env.reset()[0], 64))
        pos.append(env.position)
    err = ring_error(dot_position(torch.stack(frames)), torch.tensor(pos, dtype=torch.float32))
    assert err.max() < 1.5 and err.mean() < 0.5


def test_wrap_pad_matches_the_circular_pad_forward_and_backward():
    """WrapPad's hand-written backward folds the border's gradient back where torch's own circular pad
    does (checked in float64 against autograd), and its output is the same tensor, channels-last."""
    from torch.nn import functional as F

    from models.conv_autoencoder import WrapPad

    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 7, 6, dtype=torch.float64)  # an arbitrary gradient of the padded tensor
    ours = WrapPad.apply(x)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    ref = F.pad(x, (1, 1, 1, 1), mode="circular")
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    assert torch.equal(ours, ref) and ours.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(grad_ours, grad_ref)
    assert torch.autograd.gradcheck(WrapPad.apply, (x,))
