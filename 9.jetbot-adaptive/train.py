"""Run the adaptive world model headless on the toroidal dot (or on recorded sessions) for a step budget.

    uv run train.py                  # default run, see README "Run it" for minutes and what to expect
    uv run train.py --quick          # a smoke run in under a minute
    uv run train.py --replay saved/sessions/toroidal_dot    # learn from recorded sessions instead
    uv run train.py --compare        # after a default run: the equal-budget comparisons validate.py prints

The learner keeps its own step count in checkpoints/toroidal_dot/: a run that is killed and started
again resumes at the saved step and finishes the same budget (use --fresh to start over).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from config import ROBOT_PRESETS, AdaptiveWorldModelConfig
from learner import AdaptiveWorldModel
from learner.compare import VARIANTS, episode_resets, run_comparisons
from learner.utils import (
    HERE,
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    pick_device,
    seed_everything,
    set_threads,
)
from robots import ToroidalDotConfig, ToroidalDotRobot


@dataclass
class TrainConfig:
    """Settings of a training run (the learner's own settings live in config.py)."""

    steps: int = 2000  # loop steps (observations); a step that waits on the quality gate counts too
    episode_len: int = 20  # loop steps per episode: then the dot jumps to a new random place
    codec: str = "cnn"
    lr: float = ROBOT_PRESETS["toroidal_dot"]["PREDICTOR_LR"]  # config.py holds the measured values
    ae_lr: float = ROBOT_PRESETS["toroidal_dot"]["AUTOENCODER_LR"]
    replay: str | None = None  # a folder of recorded sessions to learn from instead of the live dot
    checkpoint_dir: str | None = None  # default: <out>/checkpoints/toroidal_dot
    out: str = str(HERE)  # output root: checkpoints/ and outputs/ go under it
    fresh: bool = False
    quick: bool = False
    device: str = "auto"
    seed: int = 0
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    compare: bool = False  # instead of training: the short comparisons of learner/compare.py
    compare_steps: int = 300  # loop steps per compared variant (the equal budget)


# the smoke run opens the gate early to reach every part; its comparisons are a few steps each
QUICK = {"steps": 60, "batch": 8, "gate": 0.6, "compare_steps": 12}


def parse_args(argv=None) -> TrainConfig:
    """Command line -> TrainConfig (every flag documented in --help)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=d.steps, help=f"loop steps in total (default {d.steps})")
    p.add_argument(
        "--episode-len", type=int, default=d.episode_len, help="loop steps per toroidal-dot episode"
    )
    p.add_argument("--codec", choices=["cnn", "mae"], default=d.codec, help="autoencoder: conv or MAE-ViT")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate of the predictor")
    p.add_argument("--ae-lr", type=float, default=d.ae_lr, help="learning rate of the autoencoder")
    p.add_argument("--replay", default=None, help="folder of recorded sessions to replay instead")
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where the learner's checkpoints go (default <out>/checkpoints/...)",
    )
    p.add_argument(
        "--out", default=d.out, help="output root for checkpoints/ and outputs/ (default: this folder)"
    )
    p.add_argument("--fresh", action="store_true", help="delete existing checkpoints and start over")
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK['steps']} steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=d.device)
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the world, the models and exploration")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (default 0: the free cores)")
    p.add_argument(
        "--compare", action="store_true", help="after a default run: the equal-budget comparisons (README)"
    )
    p.add_argument(
        "--compare-steps", type=int, default=d.compare_steps, help="loop steps per compared variant"
    )
    cfg, typed = TrainConfig(**vars(p.parse_args(argv))), given_flags(p, argv)
    if cfg.quick:  # --quick shrinks only what was not typed
        cfg = dataclasses.replace(cfg, **{k: QUICK[k] for k in ("steps", "compare_steps") if k not in typed})
    if cfg.checkpoint_dir is None:
        cfg = dataclasses.replace(cfg, checkpoint_dir=str(Path(cfg.out) / "checkpoints" / "toroidal_dot"))
    if cfg.compare_steps < 3:
        raise UserError(f"--compare-steps must be at least 3, got {cfg.compare_steps}")
    if cfg.steps <= 0 or cfg.episode_len <= 3:
        raise UserError(f"--steps must be > 0 and --episode-len > 3, got {cfg.steps} and {cfg.episode_len}")
    if not (cfg.lr > 0 and cfg.ae_lr > 0):
        raise UserError(f"--lr and --ae-lr must be positive, got {cfg.lr} and {cfg.ae_lr}")
    return cfg


def replay_sessions(folder: str):
    """(robot, selector) pairs, one per recorded session in ``folder`` (part 1's recording package)."""
    from robots.recording import RecordingReader, ReplayRobot, create_recorded_action_selector

    root = Path(folder)
    sessions = sorted(p.parent for p in root.rglob("*.json") if p.name in ("session.json", "metadata.json"))
    if not root.is_dir() or not sessions:
        raise UserError(f"no recorded sessions under {folder}: record some with --record first")
    out = []
    for s in sessions:
        reader = RecordingReader(s)
        out.append((ReplayRobot(reader), create_recorded_action_selector(reader)))
    return out


def main(argv=None) -> None:
    """Build the robot and the learner, run the budget, print the one-line summary."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    ckpt = Path(cfg.checkpoint_dir)
    if cfg.compare:
        return compare(cfg, ckpt, device, Path(cfg.out) / "outputs" / "compare.json")
    outputs = Path(cfg.out) / "outputs"
    wm_log = outputs / "toroidal_dot"
    if cfg.fresh:  # forget the old learner: its checkpoints and its metrics log
        shutil.rmtree(ckpt, ignore_errors=True)
        (wm_log / "metrics.jsonl").unlink(missing_ok=True)
    mae = {"LATENT_DIM": 64, "TOKEN_MERGE": 2} if cfg.codec == "mae" else {}  # 64 tokens of width 64
    wm_cfg = AdaptiveWorldModelConfig.for_robot(
        "toroidal_dot",
        **mae,
        CODEC=cfg.codec,
        AUTOENCODER_LR=cfg.ae_lr,
        PREDICTOR_LR=cfg.lr,
        CHECKPOINT_INTERVAL=20 if cfg.quick else 200,
        LOG_INTERVAL=10 if cfg.quick else 50,
        BATCH_SIZE=QUICK["batch"] if cfg.quick else AdaptiveWorldModelConfig.BATCH_SIZE,
        RECONSTRUCTION_THRESHOLD=QUICK["gate"]
        if cfg.quick
        else AdaptiveWorldModelConfig.RECONSTRUCTION_THRESHOLD,
    )
    start = time.perf_counter()
    if cfg.replay:
        stats = {}
        for robot, selector in replay_sessions(cfg.replay):
            learner = make_learner(robot, selector, wm_cfg, ckpt, wm_log, device, cfg.seed)
            stats = learner.run(learner.step_count + 10**9, progress=True)  # until the session ends
    else:
        robot = ToroidalDotRobot(ToroidalDotConfig(seed=cfg.seed))
        learner = make_learner(robot, None, wm_cfg, ckpt, wm_log, device, cfg.seed)
        stats = learner.run(cfg.steps, on_step=episode_resets(robot, cfg.episode_len))
    last = next((h for h in reversed(learner.history) if "total_loss" in h), {})
    dashboard = learner.logger.log_dir / "dashboard.png"
    if dashboard.exists():
        shutil.copy(dashboard, outputs / "train_dashboard.png")
    print(
        f"trained in {time.perf_counter() - start:.1f} s this run ({learner.train_seconds:.1f} s in total): "
        f"{learner.step_count} steps, {learner.pred_steps} predictor updates, "
        f"{stats.get('steps_per_second', 0):.1f} steps/s; "
        f"last predictor loss {last.get('total_loss', float('nan')):.4f}, "
        f"reconstruction {last.get('recon_loss', float('nan')):.5f}; checkpoint {ckpt}"
    )
    again = [*(["--quick"] if cfg.quick else []), *(["--out", cfg.out] if Path(cfg.out) != HERE else [])]
    print("next: " + command("validate.py", *again))  # the same --quick and --out


def compare(cfg: TrainConfig, ckpt: Path, device, out: Path) -> None:
    """The equal-budget comparisons (learner/compare.py) from the default run's checkpoint -> ``out``."""
    if not (ckpt / "state.json").exists() and not (ckpt / "state_backup.json").exists():
        raise UserError(f"no checkpoint in {ckpt}: run `{command('train.py')}` first, then --compare")
    opts = argparse.Namespace(
        seed=cfg.seed, device=device, episode_len=cfg.episode_len, episodes=4 if cfg.quick else 20,
        curve_episodes=2 if cfg.quick else 8,
    )  # fmt: skip
    start = time.perf_counter()
    print(f"{len(VARIANTS)} variants x {cfg.compare_steps} loop steps from the codec in {ckpt}")
    run_comparisons(ckpt, out, cfg.compare_steps, opts)
    print(f"compared in {time.perf_counter() - start:.0f} s; wrote {out}")
    again = [*(["--quick"] if cfg.quick else []), *(["--out", cfg.out] if Path(cfg.out) != HERE else [])]
    print("next: " + command("validate.py", *again))  # the same --quick and --out


def make_learner(robot, selector, wm_cfg, ckpt: Path, log_dir: Path, device, seed: int) -> AdaptiveWorldModel:
    """The learner, resumed from ``ckpt`` when a checkpoint is there; a damaged one is a UserError."""
    try:
        return AdaptiveWorldModel(
            robot, selector, checkpoint_dir=ckpt, log_dir=log_dir, config=wm_cfg, device=device,
            display=False, seed=seed,
        )  # fmt: skip
    except (ValueError, RuntimeError, KeyError) as e:
        raise UserError(
            f"cannot resume from {ckpt}: {str(e).splitlines()[0]} (use --fresh to start over)"
        ) from e


if __name__ == "__main__":
    exit_on_user_error(main)
