"""Loggers: where a run's metrics go (console, files, TensorBoard, W&B, Neptune, a
live terminal dashboard), behind one `Logger` interface."""

from ._base import AbstractLogger as AbstractLogger, Logger as Logger
from ._console import ConsoleLogger as ConsoleLogger
from ._convert import rows as rows, to_python as to_python
from ._dashboard import DashboardLogger as DashboardLogger
from ._file import FileLogger as FileLogger
from ._multi import MultiLogger as MultiLogger
from ._neptune import NeptuneLogger as NeptuneLogger
from ._tensorboard import TensorBoardLogger as TensorBoardLogger
from ._wandb import WandbLogger as WandbLogger
