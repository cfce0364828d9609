"""Model tests: shapes, labels on the answer only, frozen parts get no gradient, the num_world_steps
override, the parameter report, saving the trainable parts, a loss that falls, clear errors."""

import sys

import pytest
import stages
import torch
import torch.nn.functional as F

from data_utils import make_questions
from models import (
    IGNORE,
    VLM,
    LMUnavailable,
    SmallLM,
    TheWorld,
    TinyViT,
    WordTokenizer,
    WorldModel,
    load_lm,
    text_batch,
    world_model_loss,
)
from models.hf_lm import _require_gemma_group


def small_fused(steps: int = 3, **flags) -> TheWorld:
    """A fresh (untrained) TheWorld around the small LM."""
    torch.manual_seed(0)
    tok = WordTokenizer()
    return TheWorld(VLM(SmallLM(len(tok.vocab)), tok), WorldModel(), num_world_steps=steps, **flags)


def batch(n: int = 8, kind: str = "future"):
    """A fixed batch of held-out-style questions: frames (B, 3, 32, 32), ids, labels, actions (B, 3)."""
    qa = make_questions(n, 3, seed=0)
    return stages.fusion_batch(qa, torch.arange(n).numpy(), kind, WordTokenizer(), "cpu")


def test_shapes():
    frames, ids, labels, actions = batch(4)
    assert TinyViT()(frames).shape == (4, 16, 128)
    wm = WorldModel()
    assert wm.rollout(frames, actions).shape == (4, 4, 64)
    assert wm.decode(wm.encode(frames)).shape == (4, 3, 32, 32)
    fused = small_fused()
    assert fused.world_tokens(fused.world_latents(frames, actions)).shape == (4, 4, 128)
    embeds, prefix = fused.vlm.sequence(torch.zeros(4, 4, 128), fused.vlm.image_tokens(frames), ids)
    assert prefix == 2 + 4 + 1 + 16 and embeds.shape == (4, prefix + ids.shape[1], 128)


def test_labels_cover_the_answer_only_and_the_loss_reads_only_them():
    tok = WordTokenizer()
    ids, labels = text_batch(tok, ["where is the agent ?"], ["row1 col2"])
    assert ids[0].tolist() == tok.encode("where is the agent ? row1 col2") + [tok.eos_id]
    assert labels[0].tolist() == [IGNORE] * 5 + tok.encode("row1 col2") + [tok.eos_id]
    frames, ids, labels, actions = batch(4)
    fused = small_fused()
    with torch.no_grad():
        loss = fused(frames, ids, labels, actions)
        world = fused.world_tokens(fused.world_latents(frames, actions))
        embeds, prefix = fused.vlm.sequence(world, fused.vlm.image_tokens(frames), ids)
        logits = fused.vlm.lm.logits(fused.vlm.lm.hidden(embeds))  # (B, L, N)
    # by hand: position prefix + j - 1 predicts text token j, for answer tokens only
    answer = labels != IGNORE  # (B, Q)
    assert answer.sum() == 4 * 3  # two answer words and <eos> per sample
    b, j = answer.nonzero(as_tuple=True)
    manual = F.cross_entropy(logits[b, prefix + j - 1], ids[b, j])
    assert torch.allclose(loss, manual, atol=1e-5)


def test_frozen_parts_receive_no_gradient():
    frames, ids, labels, actions = batch(4)
    fused = small_fused()
    fused(frames, ids, labels, actions).backward()
    for name, p in fused.named_parameters():
        trains = name.startswith("world_proj") or name == "temporal"
        assert (p.grad is not None and p.grad.abs().sum() > 0) == trains, name
    thawed = small_fused(freeze_language=False)
    thawed(frames, ids, labels, actions).backward()
    assert thawed.vlm.lm.head.weight.grad is not None and thawed.vlm.vision.pos.grad is None


def test_num_world_steps_is_set_at_construction_and_overridable_per_call():
    frames, _, _, actions = batch(2)
    fused = small_fused(steps=2)
    assert fused.world_latents(frames, actions).shape[1] == 3  # default: 2 steps + the present
    assert fused.world_latents(frames, actions, num_world_steps=0).shape[1] == 1
    assert fused.world_latents(frames, None, num_world_steps=5).shape[1] == 6  # no actions: stand still
    z = fused.world_latents(frames, actions, num_world_steps=3)
    assert torch.allclose(z[:, :3], fused.world_latents(frames, actions, num_world_steps=2))
    with pytest.raises(ValueError, match="num_world_steps"):
        fused.world_latents(frames, actions, num_world_steps=99)
    a0 = fused.generate(frames[0], "where is the agent ?", num_world_steps=0)
    assert isinstance(a0, str)


def test_parameter_report_and_trainable_checkpoint_round_trip():
    fused = small_fused()
    rep = fused.parameter_report()
    expected = sum(p.numel() for p in fused.world_proj.parameters()) + fused.temporal.numel()
    assert rep["trainable"] == expected and rep["total"] > 10 * expected
    assert abs(rep["percent"] - 100 * expected / rep["total"]) < 1e-9
    state = fused.trainable_state_dict()
    assert set(state) == {n for n, p in fused.named_parameters() if p.requires_grad}
    other = small_fused()
    with torch.no_grad():
        other.world_proj[0].weight.add_(1.0)
    other.load_trainable(state)
    assert torch.equal(other.world_proj[0].weight, fused.world_proj[0].weight)
    with pytest.raises(ValueError, match="does not fit"):
        other.load_trainable({"temporal": torch.zeros(3, 3)})


def test_projection_only_loss_falls_on_a_fixed_batch():
    frames, ids, labels, actions = batch(8)
    fused = small_fused()
    opt = torch.optim.Adam([p for p in fused.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(30):
        loss = fused(frames, ids, labels, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0], losses  # the LM is random and frozen: only the prefix moves


def test_world_model_loss_falls_on_a_fixed_batch():
    from data_utils import make_trajectories

    d = make_trajectories(8, 4, seed=3)
    f = stages.as_float(stages.to_tensor(d["frames"]), "cpu")
    a, p = torch.from_numpy(d["actions"]), torch.from_numpy(d["proprio"])
    torch.manual_seed(0)
    wm = WorldModel()
    opt = torch.optim.Adam(wm.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss, _ = world_model_loss(wm, f, a, p)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_bad_inputs_are_clear_errors(monkeypatch):
    fused = small_fused()
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        fused.vlm.image_tokens(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="unknown word"):
        WordTokenizer().encode("where is the cat ?")
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        fused.world_latents(torch.zeros(2, 3, 32, 32), torch.zeros(3, dtype=torch.long))
    with pytest.raises(LMUnavailable, match="unknown --lm"):
        load_lm("gpt-17")
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if the optional group were not installed
    with pytest.raises(LMUnavailable, match="uv sync --group gemma"):
        _require_gemma_group()


def test_stage2_clips_are_encodings_of_recorded_frames_with_readable_ends():
    from data_utils import cell_of, make_trajectories, near_border

    d = make_trajectories(6, 6, seed=2)
    n, s = stages.clip_windows(d, 3)
    assert len(n) > 0 and (s + 3 < 6).all()
    assert not near_border(d["proprio"][n, s]).any() and not near_border(d["proprio"][n, s + 3]).any()
    torch.manual_seed(0)
    wm = WorldModel().eval()
    z = stages.clip_latents(wm, d, "cpu", chunk=7)  # a chunk size that does not divide N * T
    assert z.shape == (6, 6, 64)
    with torch.no_grad():
        one = wm.encode(stages.as_float(stages.to_tensor(d["frames"][n[0], s[0] + 3]), "cpu")[None])
    assert torch.allclose(z[n[0], s[0] + 3], one[0], atol=1e-5)
    assert cell_of(d["proprio"][n, s + 3]).shape == (len(n), 2)
