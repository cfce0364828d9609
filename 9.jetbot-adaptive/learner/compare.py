"""Short comparisons at equal budget: what uncertainty-driven actions, FiLM and the action loss buy.

Every variant starts from the *same* point, the default run's trained codec and a fresh predictor
(same seed), and learns online on the toroidal dot for the same number of loop steps, in the same
episodes of the training world; only the one named choice differs:

    default         uncertainty-driven actions, FiLM, the action loss training the classifier only
    random_actions  actions drawn uniformly at random (part 1's random selector)
    concat          the action embedding concatenated to every frame token instead of FiLM
    action_grad     the action loss's gradient also reaches the prediction (ACTION_GRAD_SCALE = 1)

Each is scored on held-out episodes (learner/evaluation.py) a few times along the way (learning speed)
and at the end; the share of "move" actions it chose shows which action was rare for it.
``uv run train.py --compare`` writes outputs/compare.json, and validate.py prints it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from config import AdaptiveWorldModelConfig
from robots import ToroidalDotConfig, ToroidalDotRobot

from .adaptive_world_model import AdaptiveWorldModel
from .evaluation import evaluate, rollout_dataset

VARIANTS = {
    "default": {},
    "random_actions": {"selector": "random"},
    "concat": {"ACTION_CONDITIONING": "concat"},
    "action_grad": {"ACTION_GRAD_SCALE": 1.0},
}
SHOWN = (  # the metrics kept for each variant (evaluation.py computes more)
    "pos_within_2px/both_actions",
    "pos_within_2px/action_0",
    "pos_within_2px/action_1",
    "pos_err_px/median",
    "r2_patch",
    "action_acc",
)


def episode_resets(robot: ToroidalDotRobot, episode_len: int):
    """An ``on_step`` callback for ``AdaptiveWorldModel.run``: every ``episode_len`` loop steps, and at
    every step the quality gate holds the robot, put the dot somewhere new (a new segment for the
    learner). While the robot cannot see well yet we show it new scenes, as a person would carry a
    waiting robot around. Measured: without this the codec saw one new frame per 4 steps and
    generalised to unseen positions slowly."""
    since_reset = {"n": 0}

    def on_step(lrn, rec):
        since_reset["n"] += 1
        if since_reset["n"] >= episode_len or rec.get("gated"):
            robot.env.reset()
            robot._frame = robot.env.render()  # ToroidalDotRobot shows its env's current frame
            lrn.reset_history()
            since_reset["n"] = 0

    return on_step


def run_variant(name: str, start: dict, steps: int, checks: int, data: dict, curve_data: dict, opts) -> dict:
    """Train one variant from ``start`` (the default run's blobs) for ``steps`` loop steps; score it."""
    from robots.runner.selectors import create_random_action_selector

    overrides = {k: v for k, v in VARIANTS[name].items() if k != "selector"}
    cfg = AdaptiveWorldModelConfig.from_dict({**start["autoencoder"]["config"], **overrides})
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=opts.seed))
    selector = None
    if VARIANTS[name].get("selector") == "random":
        selector = create_random_action_selector(robot.action_space, seed=opts.seed)
    with tempfile.TemporaryDirectory() as tmp:
        lrn = AdaptiveWorldModel(
            robot, selector, Path(tmp) / "ckpt", config=cfg, device=opts.device,
            log_dir=Path(tmp) / "log", display=False, seed=opts.seed, resume=False, log=lambda m: None,
        )  # fmt: skip
        lrn.codec.load_state_dict(start["autoencoder"]["state_dict"])  # the same trained codec for all
        on_step, curve, moves, t0 = episode_resets(robot, opts.episode_len), [], [], time.perf_counter()

        def count(lrn_, rec):
            """Remember every executed action; reset episodes as train.py does."""
            if "action" in rec:
                moves.append(rec["action"])
            on_step(lrn_, rec)

        for k in range(1, checks + 1):  # learn, then score on the small held-out set, `checks` times
            lrn.run(steps * k // checks, progress=False, on_step=count, dashboard=False)
            if k < checks:
                m, _, _ = evaluate(lrn.codec.eval(), lrn.predictor.eval(), lrn.table, curve_data, opts.device)
                curve.append({"step": lrn.step_count, **{key: m[key] for key in SHOWN}})
                lrn.codec.train()
                lrn.predictor.train()
        seconds = time.perf_counter() - t0
        m, _, _ = evaluate(lrn.codec.eval(), lrn.predictor.eval(), lrn.table, data, opts.device)
    curve.append({"step": lrn.step_count, **{key: m[key] for key in SHOWN}})
    return {
        "metrics": {key: m[key] for key in (*SHOWN, "attention/APA")},
        "curve": curve,
        "move_share": sum(moves) / max(len(moves), 1),
        "predictor_updates": lrn.pred_steps,
        "seconds": seconds,
    }


def run_comparisons(checkpoint: Path, out_json: Path, steps: int, opts, log=print) -> dict:
    """Run every variant from the checkpoint in ``checkpoint`` and write ``out_json``.

    opts: has seed, device, episode_len, episodes (held-out, final score) and curve_episodes.
    """
    from .persistence import load_latest

    found = load_latest(checkpoint, log=lambda m: None)
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {checkpoint}")
    _, blobs, _ = found
    cfg = AdaptiveWorldModelConfig.from_dict(blobs["autoencoder"]["config"])
    size, hist = cfg.MODEL_IMG_SIZE, cfg.PREDICTION_HISTORY_SIZE
    data = rollout_dataset(opts.seed, opts.episodes, 25, size, hist)
    curve_data = rollout_dataset(opts.seed, opts.curve_episodes, 25, size, hist)
    results = {}
    for name in VARIANTS:
        torch.manual_seed(opts.seed)
        results[name] = r = run_variant(name, blobs, steps, 3, data, curve_data, opts)
        m = r["metrics"]
        log(
            f"{name:15s} within 2px {m['pos_within_2px/both_actions']:.3f}, R2 {m['r2_patch']:.3f}, "
            f"action acc {m['action_acc']:.3f}, move share {r['move_share']:.2f}, "
            f"{r['predictor_updates']} updates, {r['seconds']:.0f} s"
        )
    report = {
        "steps": steps,
        "seed": opts.seed,
        "held_out_steps": len(data["hist"]),
        "curve_held_out_steps": len(curve_data["hist"]),  # the curve's points before the last use these
        "variants": results,
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=1))
    return report
