"""``python -m experiments.evaluate`` = the ``jpose-evaluate`` command
(:mod:`jpose.inference.evaluate`)."""

from jpose.inference.evaluate import (  # noqa: F401 - the command's functions, for callers
    DATASETS,
    evaluate_predictor,
    evaluate_workdir,
    flip_augmented,
    load_eval_datasets,
    main,
)

if __name__ == "__main__":
    main(prog="python -m experiments.evaluate")
