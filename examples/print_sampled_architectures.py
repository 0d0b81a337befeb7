#!/usr/bin/env python3
"""Prints a few architectures sampled by an untrained controller, for both search spaces.

  python examples/print_sampled_architectures.py [--num=3] [--seed=0]
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":  # TensorFlow's start-up noise out of stderr, as in bin/
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  cli.start_noise_filter()

from absl import app, flags  # pylint: disable=g-import-not-at-top

from nas_tf import controller, search_space  # pylint: disable=g-import-not-at-top

_NUM = flags.DEFINE_integer("num", 3, "Architectures per space.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
  del argv
  spaces = {"CNN (§3.1-3.3, strides predicted)": search_space.CNNSearchSpace(strides=(1, 2, 3)),
            "RNN cell (§3.4, base 8)": search_space.RNNCellSearchSpace()}
  for title, space in spaces.items():
    ctrl = controller.Controller(space, seed=_SEED.value)
    found, log_probs, entropies = ctrl.sample(_NUM.value, seed=_SEED.value)
    print(f"{title}: {space.num_tokens} tokens, log|space| = {space.log_num_architectures():.1f}")
    for spec, lp, h in zip(found, log_probs.numpy(), entropies.numpy()):
      print(f"  log p = {lp:7.2f}  entropy = {h:6.2f}  {spec.describe()}")


if __name__ == "__main__":
  app.run(main)
