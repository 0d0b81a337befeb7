"""nas_tf: Neural Architecture Search with Reinforcement Learning on TensorFlow 2 / Keras 3.

Implements Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017.
The package is organised along the one-way data flow of the method:

    config -> search_space -> controller -> specs -> children -> child_training
           -> rewards -> reinforce -> controller

Import submodules explicitly (``from nas_tf import specs``); this file stays light so that
``import nas_tf`` does not pull in TensorFlow.
"""

__version__ = "0.1.0"
