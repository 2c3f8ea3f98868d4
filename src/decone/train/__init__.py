"""Training: :class:`TrainConfig` (every setting), :class:`Trainer` (setup / train_step / run) and :func:`fit`."""

from decone.train.batches import batch_order, token_lengths
from decone.train.callbacks import Callback, TrainState
from decone.train.checkpoint import CHECKPOINT, LOG_FILE, find_checkpoint, load_checkpoint, prepare_output, save_checkpoint
from decone.train.config import TrainConfig, parse_settings, parse_value, setting_types
from decone.train.trainable import Trainable
from decone.train.entry import fit
from decone.train.trainer import Interrupted, Trainer

__all__ = ["TrainConfig", "Trainer", "fit", "Trainable", "Interrupted", "Callback", "TrainState", "batch_order",
           "token_lengths", "CHECKPOINT", "LOG_FILE", "find_checkpoint", "load_checkpoint", "prepare_output",
           "save_checkpoint", "parse_settings", "parse_value", "setting_types"]
