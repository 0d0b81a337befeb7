"""Packaging for nas_tf: `pip install -e ".[test]"` installs the library, its binaries and test deps."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent
BINARIES = ("nas_search", "nas_export", "nas_train", "nas_worker", "nas_report")

setuptools.setup(
    name="nas_tf",
    version="0.1.0",
    description="Neural Architecture Search with Reinforcement Learning (Zoph & Le 2017) "
                "on TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["nas_tf", "nas_tf.*"]),
    install_requires=[
        "tensorflow>=2.16,<3",
        "keras>=3",
        "tensorflow-datasets",
        "absl-py",
        "numpy",
        # TF 2.21 no longer pulls TensorBoard in; tf.summary needs it for the search's
        # reward/entropy/baseline curves.
        "tensorboard",
        # Free ports for the localhost:N parameter-server cluster (distributed search).
        "portpicker",
        # report.html (nas_report, written at the end of every search) and the
        # architecture pictures when Graphviz is not installed.
        "matplotlib",
    ],
    extras_require={
        # --search=bo: Optuna's TPE (README, "Search strategies").
        "bo": ["optuna>=3.4"],
        # nas_tf.hypermodel: a user's build_model(hp), written with KerasTuner's hp.
        "keras-tuner": ["keras-tuner>=1.4"],
        # pandas: SearchResult.to_dataframe, as the README's Python API example uses it.
        "test": ["pytest", "pytest-xdist", "optuna>=3.4", "pandas", "keras-tuner>=1.4"],
        # benchmarks/: KerasTuner's BayesianOptimization (scikit-learn) in
        # hypermodel_cifar10.py, and the plots.
        "benchmarks": ["keras-tuner[bayesian]>=1.4", "optuna>=3.4", "matplotlib"],
    },
    # bin/NAME is a link to the absl app bin/NAME.py: it runs from a checkout, and pip
    # installs it on PATH as the command NAME.
    scripts=[f"bin/{name}" for name in BINARIES if (HERE / "bin" / name).exists()],
)
