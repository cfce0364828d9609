"""Where this chapter's worlds live (the layout every chapter keeps; the code is in robots/).

Chapter 9 has no cached dataset: its learner sees frames one at a time from a robot. The simulators
are robots themselves, so they sit in the ``robots`` package; this module names them for a reader who
looks here first, as in every other chapter.
"""

from robots.sim_room import SimulatedJetBot
from robots.toroidal_dot import ToroidalDotConfig, ToroidalDotEnvironment

__all__ = ["SimulatedJetBot", "ToroidalDotConfig", "ToroidalDotEnvironment"]
