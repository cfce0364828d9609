"""The real-LM path, end to end with Gemma 3 270M (slow: ~1-2 min to load; skipped unless RUN_SLOW=1).

    RUN_SLOW=1 uv run pytest 7.vlm-world-fusion -m slow

Checks shapes, that the labels sit on the answer tokens of Gemma's own tokenizer, and that a loss falls
over a few projection-only steps on a fixed batch (Gemma, the ViT and the world model frozen).
"""

import pytest
import stages
import torch

from data_utils import make_questions
from models import GEMMA, IGNORE, VLM, TheWorld, WorldModel, load_lm, text_batch


@pytest.mark.slow
def test_gemma_fusion_end_to_end():
    torch.manual_seed(0)
    lm, tok = load_lm(GEMMA)
    assert lm.dim == 640
    fused = TheWorld(VLM(lm, tok), WorldModel(), num_world_steps=3)
    fused.vlm.img_proj.requires_grad_(True)  # a text-only LM reads images through a trained projection
    qa = make_questions(4, 3, seed=0)
    frames, ids, labels, actions = stages.fusion_batch(qa, torch.arange(4).numpy(), "future", tok, "cpu")
    # labels: only the answer's tokens (and <eos>) in Gemma's vocabulary
    for row_ids, row_labels, cell in zip(ids, labels, qa["future"], strict=True):
        answer = [int(i) for i, lab in zip(row_ids, row_labels, strict=True) if lab != IGNORE]
        assert tok.decode(answer) == f"row{cell[0]} col{cell[1]}"
        assert answer[-1] == tok.eos_id and int((row_labels != IGNORE).sum()) == len(answer)
    q_ids, _ = text_batch(tok, ["where is the agent ?"])
    world = fused.world_tokens(fused.world_latents(frames[:1], None))
    embeds, prefix = fused.vlm.sequence(fused.vlm.image_tokens(frames[:1]), world, q_ids)
    assert world.shape == (1, 4 * 16, 640) and embeds.shape == (1, prefix + q_ids.shape[1], 640)
    assert prefix == 1 + 16 + len(tok.sow_ids) + 4 * 16 + len(tok.eow_ids)
    rep = fused.parameter_report()
    assert rep["total"] > 2e8 and rep["percent"] < 1
    params = [p for p in fused.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(6):
        loss = fused(frames, ids, labels, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is None for p in lm.parameters())  # Gemma stays frozen
    assert losses[-1] < 0.95 * losses[0], losses
    assert isinstance(fused.generate(frames[0], "where is the agent ?"), str)
