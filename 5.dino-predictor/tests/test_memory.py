"""Part 2 (memory/) tests: the two-room world, the predictors' shapes, and the bugs a memory can hide:
a memory that is never written, never reset, that reads the future, or a bank that holds the present."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from memory.autoencoder import FrameAutoencoder
from memory.evaluation import read_out
from memory.neural_memory import NeuralMemory
from memory.predictors import MemoryPredictor, bank_ages, bank_index, window_mask
from memory.world import EP_LEN, TwoRoomsEnv, load_episodes, make_episodes, render_room, return_frame

CHAPTER = Path(__file__).resolve().parents[1]
KINDS = {  # the four predictors, tiny
    "no_memory": {"window": 3},
    "long_context": {"window": EP_LEN},
    "lookup": {"window": 3, "memory": "lookup", "capacity": 4},
    "neural": {"window": 3, "memory": "neural"},
}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these models are tiny, and two threads on a busy 2-core machine wait for each
    other (the fixed-batch test took 14 s with two, under 1 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(kind: str, d: int = 8, **kw) -> MemoryPredictor:
    """A small predictor of the given kind, with random weights everywhere (the zero-initialised head
    would hide any leak)."""
    torch.manual_seed(0)
    model = MemoryPredictor(d, 9, dim=32, depth=2, heads=2, **{**KINDS[kind], **kw})
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return model.eval()


def episode(b: int = 2, t: int = 10, d: int = 8, seed: int = 0):
    """Random features (B, T, 9, d) and actions (B, T)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 9, d, generator=g), torch.randint(0, 2, (b, t), generator=g)


def test_the_world_passes_gymnasiums_checker_and_one_seed_gives_the_same_frames_twice():
    check_env(TwoRoomsEnv(), skip_render_check=False)
    gaps = np.array([1, 5, 12])
    a, b = make_episodes(gaps, seed=3), make_episodes(gaps, seed=3)
    assert a["frames"].shape == (3, EP_LEN, 24, 24, 3) and a["frames"].dtype == np.uint8
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["frames"], make_episodes(gaps, seed=4)["frames"])
    for i, g in enumerate(gaps):  # A, then G frames of B, then A again: the same frame as before the gap
        r = return_frame(g)
        assert np.array_equal(a["frames"][i, 2], a["frames"][i, r])
        assert not np.array_equal(a["frames"][i, 2], a["frames"][i, r - 1])


def test_episodes_are_cached_as_a_hugging_face_dataset(tmp_path):
    first = load_episodes(np.array([2, 7]), seed=5, data_dir=tmp_path, quiet=True)
    (saved,) = tmp_path.iterdir()
    assert (saved / "dataset_info.json").exists()
    again = load_episodes(np.array([2, 7]), seed=5, data_dir=tmp_path, quiet=True)  # from the Arrow files
    assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)


def test_read_out_reads_every_rendered_room_right():
    colours, cells = np.arange(54) % 6, np.arange(54) // 6
    frames = np.stack([render_room(0, c, p) for c, p in zip(colours, cells, strict=True)])
    colour, cell = read_out(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    assert np.array_equal(colour.numpy(), colours) and np.array_equal(cell.numpy(), cells)


@pytest.mark.parametrize("kind", list(KINDS))
def test_shapes_and_no_leak_from_the_future(kind):
    """Perturbing frame t+1 (features and action) changes no prediction made at frames <= t, memory on."""
    model, (z, a) = tiny(kind), episode()
    assert model(z, a).shape == z.shape
    t = 6
    z2, a2 = z.clone(), a.clone()
    z2[:, t + 1], a2[:, t + 1] = torch.randn(2, 9, 8), 1 - a[:, t + 1]
    with torch.no_grad():
        before, after = model(z, a), model(z2, a2)
    assert torch.allclose(before[:, : t + 1], after[:, : t + 1], atol=1e-5)
    assert not torch.allclose(before[:, t + 1], after[:, t + 1])  # frame t+1 does see itself


def test_bank_holds_only_frames_that_left_the_context_first_in_first_out():
    index, window, cap = bank_index(12, 3, 4), 3, 4
    for i in range(12):
        held = [int(j) for j in index[i] if j >= 0]
        assert held == list(range(i - window, max(-1, i - window - cap), -1))  # newest first, at most cap
        assert all(j <= i - window for j in held)  # never a frame still in the context, never the future
    ages = bank_ages(12, 2, window, cap)  # per token: (L, L)
    frame = torch.arange(12).repeat_interleave(2)
    inside = ages >= 0
    assert ((frame[:, None] - frame[None, :])[inside] >= window).all()
    assert not (inside & window_mask(12, 2, window)).any()  # bank and context never overlap


def test_lookup_bank_is_written_and_evicts():
    """Window 1, capacity 1: the prediction at frame i reads frame i-1 from the bank, not frame i-2."""
    model, (z, a) = tiny("lookup", window=1, capacity=1), episode()
    with torch.no_grad():
        out = model(z, a)
        z1 = z.clone()
        z1[:, 4] += 1.0
        changed = (model(z1, a) - out).abs().amax(dim=(0, 2, 3))  # (T,) per frame
    assert changed[5] > 1e-3  # frame 4 left the context at frame 5 and went into the bank
    assert changed[6] < 1e-6 and changed[:4].max() < 1e-6  # evicted by frame 6; never seen before


def test_neural_memory_write_changes_the_state_and_stores_the_value():
    torch.manual_seed(0)
    mem = NeuralMemory(16, key_dim=8, value_dim=8, lr=1.0, momentum=0.0, decay=0.0)
    params = {k: v.clone() for k, v in mem.state_dict().items()}
    state = mem.reset(1)
    assert all((s == 0).all() for s in state)  # a new episode starts empty
    token = torch.randn(1, 1, 16)
    new = mem.write(state, token)
    assert not torch.equal(new[0], state[0]) and not torch.equal(new[1], state[1])  # the state changed
    assert all((s == 0).all() for s in state)  # and the old one was not modified in place
    k = torch.nn.functional.normalize(mem.key(token), dim=-1)[0, 0]  # (K,)
    assert torch.allclose(new[0][0] @ k, mem.value(token)[0, 0], atol=1e-5)  # theta 1, unit key: exact
    assert all(torch.equal(v, params[k]) for k, v in mem.state_dict().items())  # weights: outer loop only
    decayed = NeuralMemory(16, 8, 8, lr=1.0, momentum=0.0, decay=0.5)
    decayed.load_state_dict(mem.state_dict())
    m = decayed.write(decayed.write(decayed.reset(1), token), torch.zeros(1, 1, 16))[0]  # then another write
    assert m.norm() < new[0].norm()  # forgetting shrinks what was written


def test_neural_memory_is_reset_per_episode_and_reads_only_what_left_the_context():
    model, (z, a) = tiny("neural"), episode(b=1, t=10)
    other, _ = episode(b=1, t=10, seed=1)
    with torch.no_grad():
        alone = model(z, a)
        model(other, a)  # another episode in between must leave nothing behind
        assert torch.equal(model(z, a), alone)
        both = model(torch.cat([other, z]), torch.cat([a, a]))[1:]  # and a batch neighbour neither
        assert torch.allclose(both, alone, atol=1e-5)
        x = torch.randn(1, 10, 9, 32)
        ms = model.neural.states(x, window=3)  # (1, T, V, K)
        x2 = x.clone()
        x2[:, 5] += 1.0
        ms2 = model.neural.states(x2, window=3)
    same = [torch.equal(ms[:, i], ms2[:, i]) for i in range(10)]
    assert same == [True] * 8 + [False] * 2  # frame 5 is written when it leaves the context, at frame 8


def test_both_memories_learn_on_a_fixed_batch():
    """A loss that falls: teacher-forced on a fixed batch of two-room episodes, through the memory."""
    data = make_episodes(np.array([3, 6, 9, 12]), seed=0)
    ae = FrameAutoencoder(8)
    with torch.no_grad():
        x = torch.from_numpy(data["frames"]).flatten(0, 1).permute(0, 3, 1, 2).float() / 255
        z = ae.encode(x).view(4, EP_LEN, 9, 8)
        z = (z - z.mean((0, 1, 2))) / z.std((0, 1, 2))
    a = torch.from_numpy(data["actions"])
    for kind in ("lookup", "neural"):
        torch.manual_seed(0)
        model = MemoryPredictor(8, 9, dim=32, depth=2, heads=2, **KINDS[kind])
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        losses = []
        for _ in range(15):
            loss = (model(z[:, :-1], a) - z[:, 1:]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.7 * losses[0], (kind, losses[::5])


def test_bad_inputs_are_value_errors_naming_the_shape():
    z, a = episode()
    with pytest.raises(ValueError, match=r"\(B, T, 9, 8\)"):
        tiny("neural")(torch.randn(2, 5, 4, 8), a[:, :5])
    with pytest.raises(ValueError, match="long"):
        tiny("lookup")(z, a.float())
    with pytest.raises(ValueError, match=r"\(B, 3, 24, 24\)"):
        FrameAutoencoder(8).encode(torch.rand(2, 3, 64, 64))


def test_missing_checkpoint_and_bad_flags_are_one_line_errors(tmp_path, capsys):
    import train
    import validate

    from utils import exit_on_user_error

    for script, args, words in (
        (validate, ["--part", "memory", "--out", str(tmp_path)], ("no checkpoint", "train.py --part memory")),
        (validate, ["--part", "memory", "--n-per-gap", "0"], ("--n-per-gap 0",)),
        (train, ["--part", "memory", "--window", "18"], ("--window",)),
    ):
        with pytest.raises(SystemExit) as exit_:
            exit_on_user_error(lambda s=script, a=args: s.run(a))
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and all(w in err[0] for w in words), err


def test_quick_memory_train_then_validate_end_to_end(tmp_path):
    """One subprocess run of part 2: --quick train and validate write memory_metrics.json and the
    pictures, and leave part 1's metrics.json alone, all under --out."""
    dst = tmp_path / "5.dino-predictor"
    ignore = shutil.ignore_patterns("data", "checkpoints", "outputs", "__pycache__", "tests")
    shutil.copytree(CHAPTER, dst, ignore=ignore)
    env, root = {**os.environ, "OMP_NUM_THREADS": "1"}, tmp_path / "run"
    for script in ("train.py", "validate.py"):
        args = [sys.executable, script, "--part", "memory", "--quick", "--out", str(root)]
        out = subprocess.run(args, cwd=dst, capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        if script == "train.py":  # the next command keeps the part, --quick and --out
            assert (
                out.stdout.splitlines()[-1] == f"next: uv run validate.py --part memory --quick --out {root}"
            )
    report = json.loads((root / "outputs" / "memory_metrics.json").read_text())
    assert report["part"] == "memory" and report["quick"] is True and report["n_episodes"] >= 12
    m, targets = report["metrics"], report["targets"]
    assert set(targets) == {"memory/recall_no_memory", "memory/recall_lookup", "memory/recall_neural"}
    assert all(0.0 <= m[k] <= 1.0 for k in (*targets, "memory/recall_long_context"))
    ok = {"<=": lambda x, y: x <= y, ">=": lambda x, y: x >= y}
    assert report["passed"] == all(ok[op](m[k], t) for k, (op, t) in targets.items())
    assert len(report["per_gap_recall"]["neural"]) == 12
    assert not (root / "outputs" / "metrics.json").exists()
    for picture in ("memory_recall.png", "memory_return.png", "memory_train_loss.png", "memory_world.png"):
        assert (root / "outputs" / picture).stat().st_size > 0
    assert not any((dst / d).exists() for d in ("data", "checkpoints", "outputs"))  # all under --out
    assert "recall on the return frame" in out.stdout and "smoke run" in out.stdout
