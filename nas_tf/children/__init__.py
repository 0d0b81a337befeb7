"""Child networks built from specs: conv networks (:mod:`.cnn`, paper §3.3 and §4.1) and
language models around a recurrent cell (:mod:`.lm`, §4.2), the NAS-Bench-201 network of
a benchmark cell (:mod:`.nb201`), and a hand-designed CIFAR-10 baseline (:mod:`.resnet`).
The first two share only the size-cap error and the weight-decay convention
(:mod:`.common`).
"""

from nas_tf.children.cnn import build_cnn, estimate_cnn_cost, estimate_cnn_macs, scale_widths
from nas_tf.children.common import ChildTooLargeError, l2_weight_decay
from nas_tf.children.nb201 import build_nb201
from nas_tf.children.resnet import NAMED_NETWORKS, build_named, build_resnet
from nas_tf.children.lm import (NAMED_CELLS, CellLike, Perplexity, TiedEmbedding,
                                build_language_model, count_params_lm, make_cell,
                                units_for_param_budget)

__all__ = ["build_cnn", "estimate_cnn_cost", "estimate_cnn_macs", "scale_widths", "ChildTooLargeError",
           "l2_weight_decay", "CellLike", "Perplexity", "TiedEmbedding", "build_language_model",
           "count_params_lm", "make_cell", "units_for_param_budget", "build_nb201",
           "NAMED_CELLS", "NAMED_NETWORKS", "build_named", "build_resnet"]
