"""``python -m experiments.evaluate`` = the ``jpose-evaluate`` command
(:mod:`jpose.inference.evaluate`, whose functions callers import from there)."""

from jpose.inference.evaluate import main

if __name__ == "__main__":
    main(prog="python -m experiments.evaluate")
