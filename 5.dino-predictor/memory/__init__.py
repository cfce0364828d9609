"""Chapter 5, part 2: what the world model forgets, and two ways to make it remember.

world.py           two rooms seen one at a time (a gymnasium env) and its cached datasets
autoencoder.py     the frozen encoder every predictor shares (a small conv autoencoder)
predictors.py      the frame-causal ViT predictor with a context window and a lookup bank
neural_memory.py   an associative memory written at test time by gradient steps
training.py        `uv run train.py --part memory`
evaluation.py      `uv run validate.py --part memory`: recall against the gap
pictures.py        the return-frame picture and the recall plot
"""
