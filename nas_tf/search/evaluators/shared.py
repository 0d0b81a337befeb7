"""Weight-sharing evaluation, ``evaluation='shared'`` (Pham et al. 2018, ENAS §2.2).

ENAS alternates two phases with the controller and REINFORCE of Zoph & Le (2017, §3.2):

(a) before every step, ``shared.train_batches`` minibatches train the shared weights,
    each with one architecture the sampler draws (ENAS §2.2, "training the shared
    parameters ω"), the carried recurrent state reset at the start of the phase;
(b) the step's ``m`` children are scored *with the shared weights* on
    ``shared.eval_batches`` validation minibatches, and the sampler learns from the
    rewards (ENAS §2.2, "training the controller θ").

After the last step ``shared.derive_samples`` architectures are drawn and the best on the
validation subset is written to ``derived.json`` (ENAS §2.2, "deriving architectures").
Records carry ``"evaluation": "shared"``; specs are ordinary specs, so a found cell is
exported and retrained like any other. Data positions are pure functions of the step, so
a resumed search repeats the interrupted step exactly.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

from absl import logging
import numpy as np

from nas_tf.config import SearchConfig
from nas_tf.results import DERIVED_FILE, atomic_write_text
from nas_tf.search import records as records_lib
from nas_tf.evaluator import Evaluator


class SharedEvaluator(Evaluator):
  """Scores children with one shared model; trains it before each step."""

  trains_shared_weights = True
  reuses_results = False  # the shared weights move every step: an old score is stale
  record_extras = {"evaluation": "shared"}
  fixed_depth = True  # the shared CNN has one depth

  def __init__(self, config: SearchConfig, task):
    self.config, self.task = config, task
    self.space = self._trainer = None
    self.train_loss = float("nan")

  def adapt_space(self, space):
    """The space the shared model implements (the shared CNN fixes every layer's filters)."""
    from nas_tf import search_space  # pylint: disable=g-import-not-at-top
    if isinstance(space, search_space.CNNSearchSpace):
      from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
      space = cnn.shared_space(space, self.config.shared.cnn_filters)
    self.space = space
    return space

  @property
  def trainer(self):
    # Built on first use, after the sampler: the shared model's initial weights then
    # come from the same random streams as in runs before the loops were merged.
    if self._trainer is None:
      from nas_tf import search_space  # pylint: disable=g-import-not-at-top
      c = self.config
      data = self.task.load_data(c.data_dir, seed=c.seed, cache_dir=c.cache_dir,
                                 validation_size=c.validation_size)
      if isinstance(self.space, search_space.RNNCellSearchSpace):
        from nas_tf.shared import training  # pylint: disable=g-import-not-at-top
        self._trainer = training.RNNSharedTrainer(c, self.space, data)
      else:
        from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
        self._trainer = cnn.CNNSharedTrainer(c, self.space, data)
    return self._trainer

  def checkpoint_items(self) -> dict:
    return {"shared_model": self.trainer.model, "shared_optimizer": self.trainer.optimizer}

  def before_step(self, step: int, sampler, depth: Optional[int]) -> dict:
    n = self.config.shared.train_batches
    archs = sampler.draw(n, depth, ("train", step))
    self.train_loss = self.trainer.train(archs, step * n)
    return {"shared/train_loss": self.train_loss}

  def start(self, step: int, specs: list) -> list:
    return [lambda s=s: self._evaluate(step, s) for s in specs]

  def _evaluate(self, step: int, spec) -> dict:
    t0 = time.monotonic()
    s = self.config.shared
    arch = np.asarray(self.space.encode(spec), np.int32)
    metrics = self.trainer.evaluate(arch, step * s.eval_batches, s.eval_batches)
    metrics.update(num_params=self.trainer.num_params(spec),
                   train_seconds=time.monotonic() - t0, shared_train_loss=self.train_loss,
                   shared_params=self.trainer.shared_params)
    return metrics

  def finish(self, sampler, depth: Optional[int], output_dir: str, ran: bool) -> dict:
    """Derives the final architecture (unless a finished run is only being reopened)."""
    path = os.path.join(output_dir, DERIVED_FILE)
    if os.path.exists(path) and not ran:
      with open(path) as f:
        return {"derived": json.load(f)}
    return {"derived": self._derive(sampler, depth, path)}

  def _derive(self, sampler, depth, path: str) -> dict:
    n = self.config.shared.derive_samples
    space = sampler.space_at(depth)
    candidates = []
    for t in sampler.draw(n, depth, ("derive",)):
      metrics = self.trainer.evaluate(t, 0, None)
      spec = space.decode(t)
      record = records_lib.make_record(self.task, self.config, -1, 0, t.tolist(), spec,
                                       depth, metrics, None)
      candidates.append({"spec": spec.to_dict(), "describe": spec.describe(),
                         "tokens": t.tolist(), "reward": record["reward"],
                         "val_metric": record["val_metric"]})
    best = max(candidates, key=lambda r: r["reward"])
    result = dict(best, evaluation="shared", candidates=candidates)
    atomic_write_text(path, json.dumps(result, indent=2))
    logging.info("Derived architecture (best of %d on validation, reward %.5f): %s", n,
                 best["reward"], best["describe"])
    return result
