"""``rtstereo train`` for ``torchrun``, with rank 1 raising at its second step (an error of no rtstereo kind)."""

import os
import sys

from rtstereo.cli import main
from rtstereo.train import loop, step


class FailingOnRank1(step.TrainStep):
    def __call__(self, batch, index):
        if os.environ.get("RANK") == "1" and index == 1:
            raise RuntimeError("boom on rank 1")
        return super().__call__(batch, index)


if __name__ == "__main__":  # run as a script by torchrun; pytest's doctest collection imports it too
    loop.TrainStep = FailingOnRank1
    sys.exit(main(sys.argv[1:]))
