"""The bad inputs every `ami-robot` command must refuse with a clear error (issue 17's list and more).

Each row: (command, overrides, words the error must contain). `{name}` in an override or a word
is a file the test makes (see FILES in test_bad_inputs.py): `{image}` a small PNG, `{dir}` a
folder, `{text_pt}` a text file named .pt, `{truncated}` a checkpoint folder whose encoder lost
its second half, `{truncated_file}` that file without a card, `{bad_card}` a folder whose
encoder card is not JSON, `{nan}` a folder whose encoder holds a NaN under a valid card.

Besides these rows, every command in ami_robot.apps.COMMANDS is tried with an unknown key and
with a wrong-typed value for each of its own settings (ami_robot/apps/schemas.py), so a new
command inherits those checks by declaring its settings there.
"""

from __future__ import annotations

REFERENCE = ["model=reference", "model.device=cpu", "model.encoder=tiny", "model.predictor=tiny"]

BAD_INPUTS: list[tuple[str, list[str], list[str]]] = [
    # values of the wrong type name their field and what it takes
    ("eval", ["episodes=abc"], ["episodes", "an integer"]),
    ("eval", ["batch_size=abc"], ["batch_size", "an integer"]),
    ("eval", ["seed_start=abc"], ["seed_start", "an integer"]),
    ("eval", ["planner.samples=abc"], ["samples", "an integer"]),
    ("eval", ["planner.space.maxnorm=abc"], ["space.maxnorm", "a number"]),
    ("plan", ["goal={image}", "steps=abc"], ["steps", "an integer"]),
    ("demo", ["episodes=abc"], ["episodes", "an integer"]),
    ("eval", ["video=abc"], ["video", "true or false"]),
    # a list given as a bare word says how to write the list
    ("eval", ["tasks=Reach"], ["tasks=[Reach]", "brackets"]),
    ("bench", ["methods=random"], ["methods=[random]", "brackets"]),
    # names that do not exist list the ones that do
    ("eval", ["tasks=[Rech]"], ["unknown task 'Rech'", "PickPlace"]),
    ("demo", ["task=Pick"], ["unknown task 'Pick'", "PickPlace"]),
    ("bench", ["methods=[nope]"], ["nope", "latent_cem"]),
    ("eval", ["planner.name=nope"], ["unknown planner 'nope'", "cem"]),
    ("plan", ["goal={image}", "energy=l3"], ["energy", "l1, l2, cosine"]),
    ("train-encoder", ["device=gpu"], ["device", "cpu"]),
    # values out of range say the allowed range
    ("eval", ["batch_size=0"], ["batch_size must be >= 1"]),
    ("eval", ["batch_size=-1"], ["batch_size must be >= 1"]),
    ("demo", ["batch_size=0"], ["batch_size must be >= 1"]),
    ("eval", ["episodes=0"], ["episodes must be >= 1"]),
    ("eval", ["seed_start=5"], ["training split", "allow_training_seeds"]),
    ("eval", ["planner.samples=0"], ["samples"]),
    ("plan", ["goal={image}", "steps=0"], ["steps must be >= 1", "steps=null"]),
    ("plan", ["goal={image}", "steps=-1"], ["steps must be >= 1"]),
    ("plan", ["goal=[{image},{image}]", "budgets=[0]"], ["budgets must be >= 1"]),
    ("energy", ["points=0"], ["points must be >= 2"]),
    ("energy", ["points=1"], ["points must be >= 2"]),
    ("energy", ["radius=-1"], ["radius must be > 0"]),
    ("energy", ["radius=0"], ["radius must be > 0"]),
    ("energy", ["true_action=[0.1]"], ["true_action must be (dx, dy)"]),
    # keys that nothing reads fail loudly
    ("eval", ["+foo=1"], ["unknown key", "foo", "episodes"]),
    ("plan", ["goal={image}", "+foo=1"], ["unknown key", "foo"]),
    ("eval", ["+env.foo=1"], ["env.foo", "env.image_size"]),
    ("eval", ["+model.foo=1"], ["model.foo", "model.path"]),
    ("eval", ["model.dtype=float16"], ["model.dtype=float16", "100x slower", "model.dtype=bfloat16"]),
    ("eval", ["model.dtype=fp8"], ["model.dtype must be one of float32, bfloat16", "'fp8'"]),
    ("export", ["model.dtype=bfloat16"], ["export traces the float32 model", "model.dtype=bfloat16"]),
    ("eval", ["+planner.foo=1"], ["foo", "samples"]),
    # files that are not what they should be are named
    ("plan", ["goal={dir}"], ["{dir}", "is a directory"]),
    ("plan", ["goal={dir}/nothing.png"], ["nothing.png", "does not exist"]),
    ("plan", ["goal={text_pt}"], ["cannot read goal image", "{text_pt}"]),
    ("eval", ["model.path={truncated}"], ["{truncated}/encoder.safetensors"]),
    ("eval", [*REFERENCE, "model.path={truncated_file}"], ["{truncated_file}", "truncated or damaged"]),
    ("eval", [*REFERENCE, "model.path={text_pt}"], ["{text_pt}", "not a torch checkpoint"]),
    ("eval", ["model.path={bad_card}"], ["{bad_card}/encoder.json", "not valid JSON"]),
    ("eval", ["model.path={nan}"], ["blocks.0.attn.qkv.weight", "non-finite", "NaN"]),
    ("eval", ["model.path={dir}"], ["no checkpoint at", "encoder.safetensors"]),
    ("eval", ["model.shipped=three_view"], ["model.shipped='three_view'", "'two_view'", "model.path=FOLDER"]),
    ("train-predictor", ["encoder={text_pt}"], ["{text_pt}"]),
    ("train-predictor", ["encoder={shipped}", "data_dir={dir}"], ["data_dir={dir} holds no dataset"]),
    ("train-predictor", ["encoder={shipped}", "data_dir={dataset}", "extra_data=[{dir}]"],
     ["extra_data[0]={dir} holds no dataset"]),
    ("train-predictor", ["encoder={shipped}", "data_dir={dataset}", "extra_data=[{dataset}]"],
     ["is the same shard as one in {dataset}", "each folder may be given once"]),
    # the ONNX export and backend (ami_robot.edge)
    ("export", ["opset=17"], ["opset must be >= 18"]),
    ("export", ["check_horizon=0"], ["check_horizon must be in 1"]),
    ("export", ["max_steps=1"], ["max_steps must be >= 2"]),
    ("export", ["model=onnx", "model.path={dir}"], ["model=onnx is already an export", "model=shipped"]),
    ("eval", ["model=onnx"], ["model.path=FOLDER", "ami-robot export"]),
    ("eval", ["model=onnx", "model.path={dir}"], ["no card.json in {dir}", "ami-robot export"]),
    ("eval", ["model=onnx", "model.path={dir}", "model.precision=int4"],
     ["precision must be one of fp32, int8"]),
    ("eval", ["model=onnx", "model.path={dir}", "model.threads=0"], ["model.threads", ">= 1"]),
    ("eval", ["model=onnx", "+model.device=cpu"], ["model.device", "model.precision"]),
    # a Stable-Baselines3 policy's model file (ami_robot.policies.sb3), named by its config key
    ("bench", ["methods=[sb3]"], ["policies.sb3.path is not set", "model.zip"]),
    ("bench", ["methods=[sb3]", "policies.sb3.path={dir}/nothing.zip"],
     ["policies.sb3.path={dir}/nothing.zip", "does not exist"]),
    ("bench", ["methods=[sb3]", "policies.sb3.path={dir}"], ["policies.sb3.path={dir}", "is a directory"]),
    ("bench", ["methods=[sb3]", "policies.sb3.path={text_pt}"],
     ["policies.sb3.path={text_pt}", "not a Stable-Baselines3 model"]),
    ("eval", ["policy=sb3"], ["policy.path is not set"]),
    ("eval", ["tasks=[Reach]", "episodes=1", "policy.view_weights=[1.0]"],
     ["policy.view_weights=[1.0]", "one weight per camera view"]),
    ("eval", ["tasks=[Push]", "episodes=1", "policy.goals=final", "policy.subgoal_maker=/no/makers"],
     ["policy.subgoal_maker='/no/makers': no such folder", "auto (beside the world model) or null"]),
    ("plan", ["goal={image}", "subgoal_frames=-1"], ["subgoal_frames must be >= 0"]),
    ("train-subgoals", ["task=Reach", "seeds=3", "training.held_out=1", "out={dir}/m.safetensors"],
     ["task=Reach", "marks no sub-goal moments"]),
    ("train-subgoals", ["task=Push", "seeds=4", "training.held_out=4"], ["training.held_out=4", "1 to 3"]),
    ("train-subgoals", ["task=Push", "seeds=1"], ["seeds must be >= 2"]),
]
