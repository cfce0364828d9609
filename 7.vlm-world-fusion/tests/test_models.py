"""Model tests: shapes, labels on the answer only, frozen parts get no gradient, the num_world_steps
override, the parameter report, saving the trainable parts, a loss that falls, clear errors."""

import sys

import numpy as np
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
    agent_position,
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
    assert wm.encode(frames).shape == (4, 16, 16)  # a 4x4 grid of 16-channel latent means
    assert wm.rollout(frames, actions).shape == (4, 4, 16, 16)  # present + 3 imagined grids
    assert wm.decode(wm.encode(frames)).shape == (4, 3, 32, 32)
    fused = small_fused()
    assert fused.world_tokens(fused.world_latents(frames, actions)).shape == (4, 4 * 16, 128)
    embeds, prefix = fused.vlm.sequence(fused.vlm.image_tokens(frames), torch.zeros(4, 64, 128), ids)
    assert prefix == 1 + 16 + 1 + 64 + 1 and embeds.shape == (4, prefix + ids.shape[1], 128)
    alone, prefix = fused.vlm.sequence(fused.vlm.image_tokens(frames), None, ids)  # the VLM alone
    assert prefix == 1 + 16 and alone.shape == (4, 17 + ids.shape[1], 128)


def test_vision_tokens_come_first_then_world_tokens_step_by_step():
    frames, ids, _, actions = batch(2)
    fused = small_fused()
    with torch.no_grad():
        images = fused.vlm.image_tokens(frames)  # (2, 16, 128)
        world = fused.world_tokens(fused.world_latents(frames, actions))  # (2, 64, 128)
        embeds, _ = fused.vlm.sequence(images, world, ids)
        tok = fused.vlm.tokenizer
        assert torch.equal(embeds[:, 1:17], images)  # [<bos>, vision tokens, <sow>, world tokens, <eow>, ...]
        assert torch.equal(embeds[:, 17], fused.vlm.lm.embed(torch.tensor(tok.sow_ids))[0].expand(2, -1))
        assert torch.equal(embeds[:, 18:82], world)
        # world token (t, n) = projection of grid position n at step t + temporal[t] + spatial[n]
        z = fused.world_latents(frames, actions)  # (2, 4, 16, 16)
        t, n = 2, 5
        expected = fused.world_proj(z[:, t, n]) + fused.temporal[t] + fused.spatial[n]
        assert torch.allclose(world[:, t * 16 + n], expected, atol=1e-6)


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
        embeds, prefix = fused.vlm.sequence(fused.vlm.image_tokens(frames), world, ids)
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
        trains = name.startswith("world_proj") or name in ("temporal", "spatial")
        assert (p.grad is not None and p.grad.abs().sum() > 0) == trains, name
    thawed = small_fused(freeze_language=False)
    thawed(frames, ids, labels, actions).backward()
    assert thawed.vlm.lm.head.weight.grad is not None and thawed.vlm.vision.pos.grad is None


def test_staged_unfreezing_adds_vision_then_language():
    fused = small_fused()
    trainable = lambda: {n.split(".")[0] + "." + n.split(".")[1] if n.startswith("vlm.") else n.split(".")[0]  # noqa: E731
                         for n, p in fused.named_parameters() if p.requires_grad}  # fmt: skip
    assert trainable() == {"world_proj", "temporal", "spatial"}
    fused.set_frozen("vision", False)
    assert trainable() == {"world_proj", "temporal", "spatial", "vlm.vision", "vlm.img_proj"}
    fused.set_frozen("language", False)
    assert trainable() == {"world_proj", "temporal", "spatial", "vlm.vision", "vlm.img_proj", "vlm.lm"}
    assert not any(p.requires_grad for p in fused.world_model.parameters())
    with pytest.raises(ValueError, match="part must be"):
        fused.set_frozen("eyes", False)


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
    expected += fused.spatial.numel()
    assert rep["trainable"] == expected and rep["total"] > 10 * expected
    assert abs(rep["percent"] - 100 * expected / rep["total"]) < 1e-9
    state = fused.trainable_state_dict()
    assert set(state) == {n for n, p in fused.named_parameters() if p.requires_grad}
    other = small_fused()
    with torch.no_grad():
        other.world_proj.weight.add_(1.0)
    other.load_trainable(state)
    assert torch.equal(other.world_proj.weight, fused.world_proj.weight)
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
    a = torch.from_numpy(d["actions"])  # no positions: the world model learns from frames alone
    torch.manual_seed(0)
    wm = WorldModel()
    opt = torch.optim.Adam(wm.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss, _ = world_model_loss(wm, f, a)
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


def test_stage2_is_images_and_text_only_and_answers_future_questions_by_the_words():
    from data_utils import MOVES, cell_of, make_trajectories, near_border

    start = np.array([[0.30, 0.50], [0.12, 0.88]])
    acts = np.array([[2, 2, 3], [1, 4, 4]])  # right right up; left down down
    end = stages.arrows_end(start, acts)
    assert np.allclose(end[0], [0.70, 0.30])  # straight through the inner wall: the words, not the room
    assert np.allclose(end[1], [0.08, 0.92])  # the outer border holds the agent in
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.1, 0.9, (50, 2))
    i, a, cells = stages.arrow_questions(pos, 3, 16, rng)
    assert len(i) == 16 and a.shape == (16, 3) and (a != 0).all()
    ends = np.clip(pos[i] + MOVES[a].sum(1) * 0.2, 0.08, 0.92)
    assert (cells == cell_of(ends)).all() and not near_border(ends).any()
    # the VLM's loss needs no world tokens: its sequence is [<bos>, image, text]
    d = make_trajectories(6, 6, seed=2)
    n, s = stages.future_windows(d, 3)
    assert len(n) > 0 and (s + 3 < 6).all()
    frames, ids, labels, _ = batch(4, "present")
    vlm = small_fused().vlm
    loss = vlm(frames, ids, labels, text_gap=torch.tensor([0, 5, 40, 80]))
    assert torch.isfinite(loss)
    with torch.no_grad():  # a gap of 0 is the plain layout
        assert torch.allclose(vlm(frames, ids, labels, text_gap=torch.zeros(4, dtype=torch.long)),
                              vlm(frames, ids, labels), atol=1e-5)  # fmt: skip


def test_the_world_models_imagination_is_scored_by_the_agents_colour():
    from data_utils import PointMassRoom

    env = PointMassRoom()
    frames = np.stack([env.reset(options={"pos": p})[0] for p in ([0.2, 0.7], [0.8, 0.3])])
    pos = agent_position(stages.as_float(stages.to_tensor(frames), "cpu"))
    assert torch.allclose(pos, torch.tensor([[0.2, 0.7], [0.8, 0.3]]), atol=0.02)
