"""Consensus math for Synsight: pure numpy, no Django imports (see MODEL.md in this folder).

Entry points for the Django layer:

* ``fit_consensus`` — the guarded worker-aware refit (Dawid & Skene 1979 + priors + gold + guard).
* ``item_posteriors`` — incremental posteriors for a few items with worker parameters held fixed.
* ``item_effect`` — kinds of image within a class (look-alikes that fool most workers at once): their shares
  per synset (``fit_item_kinds``) and posteriors with the kind marginalised.
* ``item_states`` / ``vote_value`` — the stopping rule and the scheduler's priority.
* ``majority_vote``, ``fit_imagenet_table`` (Deng et al. 2009), ``fit_dawid_skene`` — the building blocks;
  ``fit_item_difficulty`` / ``prefer_difficulty`` — the item-difficulty model and its held-out test;
  ``fit_subtypes`` / ``prefer_subtypes`` — subtypes for workers who err together, and their evidence test.
* ``evaluate`` — accuracy and wall time per method on a votes CSV (wrapped by ``consensus_eval``).
"""

from . import item_effect
from .dawid_skene import PLAIN_PRIOR, ConfusionPrior, DawidSkeneResult, fit_dawid_skene, item_posteriors
from .difficulty import DifficultyConfig, fit_item_difficulty, prefer_difficulty
from .guard import ConsensusResult, GuardConfig, fit_consensus
from .imagenet_table import ConfidenceTable, fit_imagenet_table
from .majority import MajorityResult, majority_vote
from .stopping import ItemState, item_states, vote_value
from .subtypes import SubtypeConfig, fit_subtypes, prefer_subtypes
from .votes import VoteArrays, prepare_votes, vote_counts

MODEL_VERSION = "synsight-ds-5"
"""Bump when the model or its defaults change; stored with every consensus result (with "/majority" it
must fit ``Candidate.model_version``, 24 characters)."""

__all__ = [
    "MODEL_VERSION",
    "PLAIN_PRIOR",
    "ConfidenceTable",
    "ConfusionPrior",
    "ConsensusResult",
    "DawidSkeneResult",
    "DifficultyConfig",
    "GuardConfig",
    "ItemState",
    "MajorityResult",
    "SubtypeConfig",
    "VoteArrays",
    "fit_consensus",
    "fit_dawid_skene",
    "fit_imagenet_table",
    "fit_item_difficulty",
    "fit_subtypes",
    "item_effect",
    "item_posteriors",
    "item_states",
    "majority_vote",
    "prefer_difficulty",
    "prefer_subtypes",
    "prepare_votes",
    "vote_counts",
    "vote_value",
]
