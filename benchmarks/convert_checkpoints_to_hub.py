"""Per-file checkpoints (encoder/predictor .safetensors + JSON cards + README.md) -> the hub layout.

    python benchmarks/convert_checkpoints_to_hub.py --old checkpoints --out /tmp/hub

Writes config.json, model.safetensors and README.md into --out with WorldModel.save_pretrained: the
old cards' probe and prediction figures (card_from_cards) and the shipped card's planning rows below
as metrics, each with its command; the old README.md's text under a new head that describes the
layout. Checks that every tensor is bit-identical and that a planning cost on fixed inputs is equal
before and after. Moving the three files into checkpoints/ and deleting the four per-file ones is
left to the person, after the tests that read the shipped model pass.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from ami_robot.hub import Metric, card_from_cards, check_folder
from ami_robot.world_model import WorldModel

HELD_OUT = "held-out seeds from 10000, held-out palette"
G, R, LOC = "planner=gradient", "policy=retrieval", "method=latent_retrieval_locator"
OPEN_LOOP = "policy.reread=false policy.retries=0"
# The planning table of checkpoints/README.md: task, label, successes of 50, command.
PLANNING = [
    ("Reach", "latent, gradient 8 x 20: 50/50 (Wilson 93-100%), 0.222 s/action", 50,
     f"ami-robot eval tasks=[Reach] episodes=50 {G} method=latent_gradient"),
    ("Reach", "latent, MPPI 128 x 4: 50/50 (Wilson 93-100%), 0.530 s/action", 50,
     "ami-robot eval tasks=[Reach] episodes=50 planner=mppi method=latent_mppi"),
    ("Reach", "latent, CEM 128 x 4: 48/50 (Wilson 87-99%), 0.545 s/action", 48,
     "ami-robot eval tasks=[Reach] episodes=50"),
    ("Grasp", "retrieval, gradient 8 x 20: 50/50 (Wilson 93-100%), 0.239 s/action", 50,
     f"ami-robot eval tasks=[Grasp] episodes=50 {G} {R} policy.locate=false method=latent_retrieval"),
    ("PickPlace, sub-goal images", "retrieval, gradient 8 x 20: 45/50 (Wilson 79-96%), 0.230 s/action", 45,
     f"ami-robot eval tasks=[PickPlace] episodes=50 {G} {R} policy.goals=subgoals "
     "method=latent_retrieval_subgoals"),
    ("Push", "retrieval + locator, closed-loop carrying, gradient 8 x 20: 48/50 (Wilson 87-99%), "
     "0.204 s/action", 48, f"ami-robot eval tasks=[Push,PickPlace] episodes=50 {G} {R} {LOC}"),
    ("PickPlace, final image", "retrieval + locator, closed-loop carrying, gradient 8 x 20: 50/50 "
     "(Wilson 93-100%), 0.219 s/action", 50,
     f"ami-robot eval tasks=[Push,PickPlace] episodes=50 {G} {R} {LOC}"),
    ("Push", "retrieval + locator, open loop: 45/50 (Wilson 79-96%), 0.229 s/action", 45,
     f"ami-robot eval tasks=[Push,PickPlace] episodes=50 {G} {R} {LOC} {OPEN_LOOP}"),
    ("PickPlace, final image", "retrieval + locator, open loop: 48/50 (Wilson 87-99%), 0.224 s/action", 48,
     f"ami-robot eval tasks=[Push,PickPlace] episodes=50 {G} {R} {LOC} {OPEN_LOOP}"),
]
HEAD = """# Shipped checkpoints: our V-JEPA 2 encoder and V-JEPA 2-AC predictor

One world model in the Hugging Face hub layout (nothing is uploaded; it is only the format):
`config.json` (both configs, the sha256 of the weights, and `provenance`: the data, training and
recipe records of each part), `model.safetensors` (the encoder's tensors under `encoder.`, the
predictor's under `predictor.`) and this model card, whose front matter lists the figures below
with the command that made each. `WorldModel.from_pretrained("checkpoints")` (or any
`model.path=FOLDER` in this layout) loads it, checking the sha256; `WorldModel.save_pretrained(folder,
card=...)` writes one (ami_robot/hub.py). The retrieval policy's memory and locator sit beside it,
each with its JSON card.

Written by `ami-robot reproduce` (ami_robot/conf/reproduce.yaml) as per-file checkpoints (their
sha256 are in config.json's provenance), then converted, tensors bit for bit, by
benchmarks/convert_checkpoints_to_hub.py; every figure below comes from that run.

"""


def card_text(old_readme: str) -> str:
    """The old card's text from its file table on, under HEAD (the table's sha256 column dropped:
    the weights' sha256 is config.json's, the memory's and locator's are on their cards)."""
    body = old_readme[old_readme.index("| file |"):]
    rows = [re.sub(r" \| `[0-9a-f]{16}\.\.\.` \|", " |", line) if line.startswith("|") else line
            for line in body.splitlines()]
    rows[0], rows[1] = "| file | architecture | steps | wall time |", "|---|---|---|---|"
    rows = [r.replace("| encoder.safetensors |", "| model.safetensors: encoder.* |")
             .replace("| predictor.safetensors |", "| model.safetensors: predictor.* |") for r in rows]
    return HEAD + "\n".join(rows) + "\n"


def cost_on_fixed_inputs(wm: WorldModel) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 64, 64, 3), generator=g, dtype=torch.uint8)
    z = wm.encode(frames)  # (3, N, D)
    states = torch.rand(1, 2, 7, generator=g)
    actions = 0.05 * torch.randn(16, 4, 7, generator=g)
    with torch.no_grad():
        return wm.planning_cost(z[None, :2], states, z[2:], horizon=4)(actions)  # (16,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=Path("checkpoints"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    metrics = tuple(Metric(task, f"ami_robot/{task.split(',')[0]}-v0", HELD_OUT, "success_rate", n / 50, cmd,
                           label) for task, label, n, cmd in PLANNING)
    card = card_from_cards(args.old, name="ami-robot-vjepa2-ac-tiny",
                           text=card_text((args.old / "README.md").read_text()), metrics=metrics)
    before = WorldModel.from_checkpoint(args.old)
    before.save_pretrained(args.out, card=card)
    after = WorldModel.from_pretrained(args.out)
    a, b = before.state_dict(), after.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "tensors differ"
    assert torch.equal(cost_on_fixed_inputs(before), cost_on_fixed_inputs(after)), "planning costs differ"
    print(f"{args.out}: {len(a)} tensors bit-identical, planning cost equal; "
          f"model.safetensors sha256 {check_folder(args.out)['sha256']['model.safetensors']}")


if __name__ == "__main__":
    main()
