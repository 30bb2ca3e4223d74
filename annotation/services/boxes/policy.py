"""The box pipeline's numbers: task sizes, the stopping rule of quality and coverage votes, rounds and limits
(see boxes.md beside this package for what each means in the state machines)."""

from annotation.models import BoxAnswer, BoxJob, BoxTask

Kind = BoxTask.Kind
A = BoxAnswer.Answer

# Task sizes: drawing is slow (ILSVRC: ~25 s a box), verifying fast (a few seconds an item).
DRAW_PER_TASK = 4
VERIFY_PER_TASK = 12
# Stopping rule for quality and coverage votes (annotation.consensus.item_states). With workers of the
# default accuracy (0.8) three unanimous answers reach 0.985; two do not (0.94), so one dissent costs votes.
CONFIDENCE = 0.95
MIN_VOTES = 2
MAX_VOTES = 5
PRIOR_YES = 0.5
# Bounded rounds: a round ends each time the image goes back to drawing (a rejected box, a "not covered").
MAX_ROUNDS = 10
# "Object not present" from this many drawers, with no accepted box, takes the image out of the pipeline.
ABSENT_TO_DROP = 2
MAX_BOXES_PER_IMAGE = 50  # an image with this many accepted boxes is treated as covered (a crowd scene)
MERGE_IOU = 0.5  # with ILSVRC's small-object tolerance (annotation.boxes.small_object_threshold)
SYNSETS_TRIED = 25
ENTER_BATCH = 2000
ENTER_EVERY_SECONDS = 30

ACTIVE = [BoxJob.State.DRAW, BoxJob.State.QUALITY, BoxJob.State.COVERAGE]
DRAW_ANSWERS = {"box": A.BOX, "no_more": A.NO_MORE, "not_present": A.NOT_PRESENT, "skip": A.CANT_TELL}
VERIFY_ANSWERS = {"yes": A.YES, "no": A.NO, "cant_tell": A.CANT_TELL}
