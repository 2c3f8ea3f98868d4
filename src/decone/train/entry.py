"""The training entry point: :func:`fit` runs one :class:`~decone.train.trainer.Trainer`, or a method in stages
(:mod:`decone.train.stages`) stage by stage. It sits above both, so neither imports the other's module back."""

from __future__ import annotations

from typing import Sequence

from decone.data import Dataset
from decone.train import stages
from decone.train.config import TrainConfig
from decone.train.trainer import Trainer


def fit(config: TrainConfig, callbacks: Sequence = (), data: Dataset | None = None, console=None) -> dict:
    """Train ``config.method`` and save the encoder to ``config.output``. Returns the training summary. A method in
    stages (``llm2vec``) runs each stage in turn (:mod:`decone.train.stages`).

    Raises:
        DeconeError: bad config, data or model (nothing is written in that case).
        Interrupted: Ctrl-C; a checkpoint was saved first.
    """
    if stages.is_staged(config):
        return stages.run_stages(config, callbacks, data, console)
    return Trainer(config, callbacks, data, console).run()
