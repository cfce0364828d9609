"""Looking inside recorded sessions and the learner's checkpoints: session_explorer.py (the commands)
and analysis.py (the numbers behind them)."""
