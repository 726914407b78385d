"""``python -m experiments.infer`` = the ``jpose`` command (:mod:`jpose.inference.cli`)."""

import sys

from jpose.inference.cli import main

if __name__ == "__main__":
    sys.exit(main())
