"""Model tests: shapes, the frame-level causal mask, learning, DINO's EMA teacher, CEM, bad inputs."""

import copy

import numpy as np
import pytest
import torch

from models import (
    DINOHead,
    FeatureDecoder,
    FeaturePredictor,
    ViT,
    cem,
    dino_loss,
    ema_update,
    frame_causal_mask,
    ibot_patch_loss,
    random_patch_mask,
    rollout,
    update_center,
)


def small_predictor(causal=True, d=8):
    """A tiny predictor over (B, T<=3, 16, d) features."""
    return FeaturePredictor(d, 16, num_hist=3, dim=32, depth=2, heads=2, emb=4, causal=causal)


def inputs(b=2, t=3, d=8):
    """Random features (B, T, 16, d), proprio in [-1, 1] (B, T, 4), actions in [-1, 1] (B, T, 2)."""
    return torch.randn(b, t, 16, d), torch.rand(b, t, 4) * 2 - 1, torch.rand(b, t, 2) * 2 - 1


def test_shapes():
    vit = ViT(dim=32, depth=2, heads=4)
    assert vit(torch.rand(2, 3, 64, 64)).shape == (2, 17, 32)  # [CLS] + 4x4 patches
    assert vit.patch_features(torch.rand(2, 3, 64, 64)).shape == (2, 16, 32)
    assert DINOHead(32, 16)(torch.randn(5, 32)).shape == (5, 16)
    z, p, a = inputs()
    z_next, p_next = small_predictor()(z, p, a)
    assert z_next.shape == (2, 3, 16, 8) and p_next.shape == (2, 3, 4)
    zs, ps = rollout(small_predictor(), z[:, 0], p[:, 0], torch.zeros(2, 5, 2))
    assert zs.shape == (2, 5, 16, 8) and ps.shape == (2, 5, 4)
    assert FeatureDecoder(8)(z[:, 0]).shape == (2, 3, 64, 64)
    from encoders import PixelPatches

    x = torch.rand(2, 3, 64, 64)
    pix = PixelPatches().patch_features(x)
    small = torch.nn.functional.avg_pool2d(x, 4)  # (2, 3, 16, 16)
    assert pix.shape == (2, 16, 48) and torch.allclose(pix[1, 5].view(3, 4, 4), small[1, :, 4:8, 4:8])


def test_frame_causal_mask():
    m = frame_causal_mask(3, 2)  # 3 frames of 2 tokens
    expected = torch.tensor(
        [[1, 1, 0, 0, 0, 0]] * 2 + [[1, 1, 1, 1, 0, 0]] * 2 + [[1] * 6] * 2, dtype=torch.bool
    )
    assert torch.equal(m, expected)


def randomised(model):
    """The model with random weights everywhere (the zero-initialised head would hide any leak)."""
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def test_future_frames_cannot_change_past_predictions():
    z, p, a = inputs()
    z2, p2, a2 = z.clone(), p.clone(), a.clone()
    z2[:, 2], p2[:, 2], a2[:, 2] = torch.randn(2, 16, 8), torch.rand(2, 4), -a[:, 2]  # change frame 2 only
    model = randomised(small_predictor())
    with torch.no_grad():
        (za, pa), (zb, pb) = model(z, p, a), model(z2, p2, a2)
    assert torch.allclose(za[:, :2], zb[:, :2], atol=1e-6) and torch.allclose(pa[:, :2], pb[:, :2], atol=1e-6)
    assert not torch.allclose(za[:, 2], zb[:, 2])  # the prediction made at frame 2 does see it
    blind = randomised(small_predictor(causal=False))  # the control: without the mask the future leaks
    with torch.no_grad():
        assert not torch.allclose(blind(z, p, a)[0][:, :2], blind(z2, p2, a2)[0][:, :2])


def test_predictor_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = small_predictor()
    z, p, a = inputs(b=4, t=4)
    target = z[:, 1:] + a[:, :3, None, :1]  # the next features depend on the action
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = (model(z[:, :3], p[:, :3], a[:, :3])[0] - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_dino_step_trains_the_student_and_never_the_teacher():
    torch.manual_seed(0)
    student, head = ViT(dim=32, depth=1, heads=2), DINOHead(32, 16, 32, 8)
    teacher, t_head = copy.deepcopy(student).requires_grad_(False), copy.deepcopy(head).requires_grad_(False)
    before = [q.clone() for q in teacher.parameters()]
    opt = torch.optim.SGD([*student.parameters(), *head.parameters()], lr=0.1)
    views = torch.rand(2, 4, 3, 64, 64)  # two views (renders under two scenes) of 4 poses
    s_out = head(student(views.flatten(0, 1))[:, 0]).view(2, 4, -1)
    t_out = t_head(teacher(views.flatten(0, 1))[:, 0]).view(2, 4, -1)
    loss = dino_loss(s_out, t_out, torch.zeros(16), n_global=2)
    loss.backward()
    assert all(q.grad is None for q in [*teacher.parameters(), *t_head.parameters()])  # no gradient
    assert student.embed.weight.grad.abs().sum() > 0
    opt.step()
    ema_update(teacher, student, momentum=0.9)
    for old, new, s in zip(before, teacher.parameters(), student.parameters(), strict=True):
        assert torch.allclose(new, 0.9 * old + 0.1 * s.detach(), atol=1e-6)  # moved only by the EMA
    center = update_center(torch.zeros(16), t_out, momentum=0.9)
    assert torch.allclose(center, 0.1 * t_out.reshape(-1, 16).mean(0))


def test_dino_loss_is_the_cross_entropy_written_out():
    s, t = torch.randn(3, 2, 5), torch.randn(2, 2, 5)
    pt = (t / 0.04).softmax(-1)
    ls = (s / 0.1).log_softmax(-1)
    pairs = [(i, j) for i in range(2) for j in range(3) if i != j]
    manual = sum(-(pt[i] * ls[j]).sum(-1).mean() for i, j in pairs) / len(pairs)
    assert torch.allclose(dino_loss(s, t, torch.zeros(5), 2), manual)


def test_cem_finds_the_minimum_of_a_quadratic():
    target = torch.tensor([[0.5, -0.3]]).repeat(2, 3, 1)  # (B, H, A)
    plan = cem(
        lambda a: (a - target[:, None]).pow(2).sum((-1, -2)),
        torch.zeros(2, 3, 2),
        n_iters=8,
        gen=torch.Generator().manual_seed(0),
    )
    assert (plan - target).abs().max() < 0.1


def test_bad_inputs_are_value_errors_naming_the_shape():
    z, p, a = inputs()
    with pytest.raises(ValueError, match=r"\(B, T<=3, 16, 8\)"):
        small_predictor()(torch.randn(2, 4, 16, 8), p, a)  # too many frames
    with pytest.raises(ValueError, match=r"actions \(B, T, 2\)"):
        small_predictor()(z, p, torch.zeros(2, 3, 3))
    from encoders import FrozenEncoder

    with pytest.raises(ValueError, match=r"\(\.\.\., 64, 64, 3\) uint8"):
        FrozenEncoder(ViT(dim=32, depth=1), 32).encode(
            np.zeros((2, 48, 48, 3), np.uint8), "cpu"
        )  # a goal image of the wrong size
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        ViT(dim=32, depth=1).patch_features(torch.rand(2, 3, 48, 48))
    with pytest.raises(ValueError, match="float"):
        ViT(dim=32, depth=1)(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))


@pytest.mark.parametrize("rollout_steps", [3, 5])
def test_rollout_fine_tune_runs_learns_and_keeps_the_teacher_forced_state(rollout_steps):
    """Stage 2b (train.py --finetune-steps, --rollout-steps) trains on without shape errors, lowers the
    loss, and the state returned for the ablation is the one from before the fine-tune."""
    import dataclasses

    from train import TrainConfig
    from training import train_predictor

    cfg = dataclasses.replace(
        TrainConfig(),
        pred_steps=30,
        finetune_steps=30,
        batch_size=4,
        pred_dim=32,
        pred_depth=1,
        rollout_steps=rollout_steps,
    )
    torch.manual_seed(0)
    proprio, actions = torch.rand(3, 8, 4), torch.rand(3, 7, 2) * 2 - 1
    steps = torch.cat([torch.zeros(3, 1), actions[:, :, 0]], 1)  # (Ntraj, T): the move into each frame
    z = torch.randn(3, 1, 16, 8) + steps.cumsum(1)[:, :, None, None]  # (Ntraj, T, N, D): the action moves z
    model, hist, before = train_predictor(cfg, z, proprio, actions, "cpu")
    assert model.feat_dim == 8 and hist["loss"][-1] < hist["loss"][0]
    assert hist["step"][-1] == 59  # one curve over both stages
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "the fine-tune did not change the weights"
    tf_only, _, _ = train_predictor(dataclasses.replace(cfg, finetune_steps=0), z, proprio, actions, "cpu")
    assert all(torch.equal(v, before[k]) for k, v in tf_only.state_dict().items())


def test_predictors_trained_two_at_a_time_are_the_ones_trained_one_after_another():
    """train.py trains stage 2's predictors in two worker processes: each job seeds itself, so the
    weights are those of the one-process run, whatever worker ran which job."""
    import dataclasses

    from train import TrainConfig
    from training import train_predictors

    cfg = dataclasses.replace(TrainConfig(), pred_steps=4, finetune_steps=2, batch_size=2, pred_dim=16)
    torch.manual_seed(0)
    proprio, actions = torch.rand(3, 8, 4), torch.rand(3, 7, 2) * 2 - 1
    jobs = [
        {"name": "a", "z": torch.randn(3, 8, 16, 8), "causal": True, "finetune": True},
        {"name": "b", "z": torch.randn(3, 8, 16, 6), "causal": True, "finetune": True},
        {"name": "a/nomask", "z": torch.randn(3, 8, 16, 8), "causal": False, "finetune": False},
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker, so that both runs add their floats in the same order
    try:
        alone = train_predictors(cfg, jobs, proprio, actions, torch.device("cpu"), workers=1)
    finally:
        torch.set_num_threads(threads)
    pooled = train_predictors(cfg, jobs, proprio, actions, torch.device("cpu"), workers=2)
    assert list(pooled) == ["a", "b", "a/nomask"]
    for name, (state, hist, teacher_forced) in pooled.items():
        assert all(torch.equal(v, alone[name][0][k]) for k, v in state.items()), name
        assert hist["loss"] == alone[name][1]["loss"] and teacher_forced.keys() == state.keys()


def test_ibot_patch_loss_counts_only_masked_patches_and_the_mask_token_hides_them():
    """iBOT: the loss is the cross-entropy at masked patches only; a masked patch's pixels cannot matter."""
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    ce = -((t / 0.04).softmax(-1) * (s / 0.1).log_softmax(-1)).sum(-1)  # (B, N)
    assert torch.allclose(ibot_patch_loss(s, t, torch.zeros(5), mask), ce[mask].mean())
    m = random_patch_mask(64, 16, (0.25, 0.25), torch.Generator().manual_seed(0))
    assert m.shape == (64, 16) and (m.sum(1) == 4).all()
    vit, x = ViT(dim=32, depth=1, heads=2).eval(), torch.rand(1, 3, 64, 64)
    hide = torch.zeros(1, 16, dtype=torch.bool)
    hide[0, 0] = True  # the top-left 16x16 patch
    x2 = x.clone()
    x2[..., :16, :16] = 0.0  # change only the hidden patch's pixels
    with torch.no_grad():
        assert torch.allclose(vit(x, hide), vit(x2, hide), atol=1e-6)
        assert not torch.allclose(vit(x), vit(x2))


def test_rendered_cost_prefers_the_plan_that_reaches_the_goal():
    """The ceiling's cost (true simulator, no predictor): the plan that ends on the goal pose scores lower
    than the plan that turns the other way, and with no nuisance its last imagined frame is the goal."""
    from encoders import FrozenEncoder, PixelPatches
    from evaluate import rendered_cost

    from data_utils import Nuisance, render_many, step_joints

    enc, scene = FrozenEncoder(PixelPatches(), 48), Nuisance.sample(np.random.default_rng(0), on=False)
    q_now = np.array([[0.3, 1.0]])  # (B=1, 2)
    toward = np.array([[1.0, 0.5], [1.0, 0.5]])  # (H=2, 2)
    goal = step_joints(step_joints(q_now[0], toward[0]), toward[1])
    z_goal = enc.encode(render_many(goal[None], scene), "cpu")  # (1, 16, 48)
    samples = torch.tensor(np.stack([toward, -toward])[None], dtype=torch.float32)  # (1, S=2, H=2, 2)
    cost = rendered_cost(enc, q_now, [scene], z_goal, "cpu")(samples)  # (1, 2)
    assert cost.shape == (1, 2) and cost[0, 0] < cost[0, 1]
    one_step = rendered_cost(enc, q_now, [scene], z_goal, "cpu")(samples[:, :, :1])  # only the first frame
    assert torch.isclose(cost[0, 0], one_step[0, 0], atol=1e-6)  # the second frame is the goal: adds 0
