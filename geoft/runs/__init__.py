"""The run folder: its layout (:class:`RunDir`), what Lightning writes into it, and restoring a trained task.

* :mod:`geoft.runs.folder`: :class:`RunDir`, the one owner of the folder's layout.
* :mod:`geoft.runs.events`: the ``metrics.jsonl`` writer and reader.
* :mod:`geoft.runs.logger`, :mod:`geoft.runs.callbacks`, :mod:`geoft.runs.checkpoint`,
  :mod:`geoft.runs.checkpoint_io`: the Lightning extensions, one kind a module.
* :mod:`geoft.runs.deploy`: the deploy config.
* :mod:`geoft.runs.restore`: a trained task and its normalisation from a checkpoint.
* :mod:`geoft.runs.reference_layout`: checkpoints trained by the reference (TerraTorch), translated.
* :mod:`geoft.runs.initial_weights`: a new fine-tuning started from a checkpoint's weights.
"""

from geoft.runs.folder import RunDir, make_run_dir

__all__ = ["RunDir", "make_run_dir"]
