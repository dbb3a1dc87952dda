"""Training: the loop behind ``rtstereo train``, its configuration and losses.

Needs torch. Example::

    from rtstereo.train import TrainConfig, train
    summary = train(TrainConfig(out_dir="runs/try", steps=1000, batch_size=4, crop_hw=(128, 256)))
"""

from .config import TrainConfig, read_config_file, resolve_config
from .loop import train

__all__ = ["TrainConfig", "read_config_file", "resolve_config", "train"]
