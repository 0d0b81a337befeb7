"""Test-wide settings: quiet TensorFlow, pin the Keras backend, keep tests on one CPU thread pool."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

TESTDATA = ROOT / "testdata"
