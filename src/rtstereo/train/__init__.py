"""Training: the loop behind ``rtstereo train``, its configuration and losses.

Needs torch. Example::

    from rtstereo.train import TrainConfig, train
    summary = train(TrainConfig(out_dir="runs/try", steps=1000, batch_size=4, crop_hw=(128, 256)))
"""

from ..errors import torch_missing

# Every module here needs torch: without it, importing any of them (rtstereo.train.online, .hints, .selfsup) says so
# in one line naming the extra to install, as the verbs do, not "No module named 'torch'" from deep inside.
try:
    import torch  # noqa: F401
except ImportError as exc:
    torch_missing("rtstereo.train (training and adaptation)", exc)

from .config import TrainConfig, read_config_file, resolve_config
from .loop import train

__all__ = ["TrainConfig", "read_config_file", "resolve_config", "train"]
