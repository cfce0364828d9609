"""The learner's behaviour: gating, uncertainty, selectors, replay, and crash-proof checkpoints.

Tiny budgets (a few dozen steps, batch 4, a narrow codec) keep these fast; the behaviour, not the
quality, is tested here.
"""

import json

import pytest
import torch
from config import AdaptiveWorldModelConfig
from learner import AdaptiveWorldModel, ReplayBuffer
from robots import RobotConnectionError, ToroidalDotConfig, ToroidalDotRobot


class CountingDot(ToroidalDotRobot):
    """The toroidal dot, counting executed actions; can lose its 'connection' after ``fail_after``."""

    def __init__(self, fail_after=None):
        super().__init__(ToroidalDotConfig(seed=0))
        self.executed, self.fail_after = 0, fail_after

    def execute_action(self, action):
        if self.fail_after is not None and self.executed >= self.fail_after:
            raise RobotConnectionError("simulated network loss")
        self.executed += 1
        return super().execute_action(action)


def small_cfg(**kw) -> AdaptiveWorldModelConfig:
    """A config small enough for tests; every gate wide open unless overridden."""
    base = dict(
        MODEL_IMG_SIZE=32,
        CNN_CHANNELS=8,
        LATENT_DIM=16,
        PREDICTOR_DIM=32,
        BATCH_SIZE=4,
        UPDATES_PER_STEP=1,
        RECONSTRUCTION_THRESHOLD=1e9,
        MAX_GATED_STEPS=0,
        PREDICTION_THRESHOLD=-1.0,  # train the predictor at every step (a perfect "stay" scores 0)
        CHECKPOINT_INTERVAL=5,
        LOG_INTERVAL=5,
        DISPLAY_INTERVAL=10,
        AUTOENCODER_LR=1e-3,
        PREDICTOR_LR=1e-3,
    )
    return AdaptiveWorldModelConfig.for_robot("toroidal_dot", **{**base, **kw})


def learner(tmp_path, robot=None, quiet=True, **kw) -> AdaptiveWorldModel:
    """A learner whose checkpoints and logs live in tmp_path."""
    logs = []
    lrn = AdaptiveWorldModel(
        robot or CountingDot(),
        checkpoint_dir=tmp_path / "ckpt",
        log_dir=tmp_path / "log",
        config=small_cfg(**kw),
        display=False,
        log=logs.append,
    )
    lrn.messages = logs
    return lrn


def test_resume_after_a_simulated_crash(tmp_path):
    a = learner(tmp_path)
    for _ in range(12):  # no run(): the process "dies" without a final save
        a.step()
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["step"] > 0 and state["pred_steps"] % 5 == 0
    b = learner(tmp_path)
    assert b.resumed_from == "primary" and b.step_count == state["step"]
    assert b.pred_steps == state["pred_steps"] and b.buffer.count > 0  # counters and replayed history
    saved = torch.load(tmp_path / "ckpt" / "predictor.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in b.predictor.state_dict().items())
    b.run(b.step_count + 3, progress=False, dashboard=False)
    assert b.step_count == state["step"] + 3


def test_corrupt_primary_falls_back_to_backup(tmp_path):
    a = learner(tmp_path)
    a.run(11, progress=False, dashboard=False)  # several saves: a primary and a backup set exist
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "autoencoder_backup.pth").exists() and (ckpt / "state_backup.json").exists()
    backup_step = json.loads((ckpt / "state_backup.json").read_text())["step"]
    (ckpt / "autoencoder.pth").write_bytes(b"garbage")
    b = learner(tmp_path)
    assert b.resumed_from == "backup" and b.step_count == backup_step
    assert any("backup" in m for m in b.messages)
    (ckpt / "autoencoder_backup.pth").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no usable checkpoint"):
        learner(tmp_path)


def test_quality_gate_holds_the_robot_until_reconstruction_is_good(tmp_path):
    robot = CountingDot()
    a = learner(tmp_path, robot, RECONSTRUCTION_THRESHOLD=0.0, MAX_GATED_STEPS=4)
    a.run(10, progress=False, dashboard=False)
    assert robot.executed == 2  # acts only when the safety valve opens (after 4 waiting steps)
    robot2 = CountingDot()
    b = learner(tmp_path / "b", robot2)  # threshold 1e9: never gated
    b.run(10, progress=False, dashboard=False)
    assert robot2.executed == 10


def test_uncertainty_choice_and_custom_selector(tmp_path):
    a = learner(tmp_path, EXPLORATION_EPSILON=0.0)
    frame = a.robot.get_observation()
    assert a._choose(frame, torch.tensor([0.1, 0.6]))[0] == {"action": 1}
    assert a._choose(frame, torch.tensor([0.6, 0.1]))[0] == {"action": 0}
    from robots.runner.selectors import create_constant_action_selector

    robot = CountingDot()
    b = learner(tmp_path / "b", robot, quiet=True)
    b.selector = create_constant_action_selector({"action": 1})
    b.run(6, progress=False, dashboard=False)
    assert robot.env.x == (ToroidalDotRobot(ToroidalDotConfig(seed=0)).env.x + 6 * 7) % 224


def test_lost_connection_saves_and_stops(tmp_path):
    a = learner(tmp_path, CountingDot(fail_after=5))
    stats = a.run(50, progress=False)  # also draws the dashboard once
    assert stats["stop_reason"].startswith("connection_lost")
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["step"] == a.step_count
    assert (tmp_path / "log" / "metrics.jsonl").exists() and (tmp_path / "log" / "dashboard.png").exists()


def test_replay_buffer_never_crosses_segments():
    buf = ReplayBuffer(capacity=10, size=8)
    for _segment in range(2):
        for _ in range(5):
            buf.append(torch.rand(3, 8, 8))
            buf.set_last_action(1)
        buf.new_segment()
    ends = buf.valid_ends(history=3)
    assert list(ends) == [3, 4, 8, 9]
    batch = buf.sample(list(ends), 3)
    assert batch["frames"].shape == (4, 4, 3, 8, 8) and batch["action_idx"].shape == (4, 3)


def scored(action, change, copy, model):
    """A history entry as score_prediction writes it: |delta|^2, |r|^2 and |delta - r|^2."""
    return {"pred_action": action, "change_size": change, "copy_last_error": copy, "fresh_pred_error": model}


def test_trust_share_reports_copy_last_until_the_model_has_earned_a_share(tmp_path):
    from models import relative_weighted_mse

    a = learner(tmp_path, TRUST_WINDOW=3)
    a.run(4, progress=False, dashboard=False)  # enough frames for real predictions
    k = len(a.action_space)
    # Past entries ten times larger than any real error, so the real one each step adds barely moves
    # the fit. <delta, r> = (change + copy - model) / 2; share = sum <delta, r> / sum change, in [0, 1].
    cases = (
        ([scored(i, 10.0, 10.0, 40.0) for i in range(k)] * 3, 0.0),  # the change points away: share 0
        ([scored(i, 10.0, 10.0, 0.0) for i in range(k)], 0.0),  # perfect, but too few entries yet
        ([scored(i, 10.0, 10.0, 0.0) for i in range(k)] * 3, 1.0),  # perfect: all of the change
        ([scored(i, 40.0, 10.0, 10.0) for i in range(k)] * 3, 0.5),  # right direction, twice too big
    )
    for entries, share in cases:
        a.history.clear()
        a.history.extend(entries)
        a.step()  # appends its own real entry, then fits the share for its new prediction
        last = a.last
        assert last["share"] == pytest.approx(share, abs=0.02)
        mix = last["frame"] + last["share"] * (last["pred_taken"] - last["frame"])
        assert torch.equal(last["pred_reported"], mix)
        a.step()  # scores what was reported
        r = a.history[-1]
        assert r["model_share"] == last["share"] and r["pred_action"] == last["action"]
        x = a.buffer.frames[(a.buffer.count - 1) % a.buffer.capacity].float() / 255.0  # the frame it met
        assert r["reported_error"] == pytest.approx(float(relative_weighted_mse(mix, x, a.cfg.FG_WEIGHT)))
        if share == 0.0:
            assert r["reported_error"] == r["copy_last_error"]
    a.cfg.TRUST_WINDOW = 0
    assert a.trust_share(0) == 1.0  # 0: the model is reported unscaled


def test_a_prediction_is_scored_against_copy_last_once_even_while_the_robot_waits(tmp_path):
    a = learner(tmp_path, RECONSTRUCTION_THRESHOLD=-1.0, MAX_GATED_STEPS=2)  # wait 2 steps after each act
    a.run(12, progress=False, dashboard=False)
    rows = list(a.history)
    repeats = [h for h in rows if "fresh_pred_error" in h and "copy_last_error" not in h]
    assert repeats  # the robot waited, so the same prediction met the same frame again (the test has teeth)
    for before, h in zip(rows, rows[1:], strict=False):  # scored exactly on the first frame after acting
        assert ("copy_last_error" in h) == ("fresh_pred_error" in h and "action" in before)


def test_near_tied_entropies_are_broken_at_random(tmp_path):
    a = learner(tmp_path, EXPLORATION_EPSILON=0.0)  # no random exploration: only the tie rule
    pick = lambda entropy: a.action_space.index(a._choose(None, torch.tensor(entropy))[0])  # noqa: E731
    assert {pick([0.6931, 0.6930]) for _ in range(40)} == {0, 1}  # 1e-4 nats apart: a tie, both chosen
    assert {pick([0.3, 0.6]) for _ in range(40)} == {1}  # a real difference: the most uncertain one
