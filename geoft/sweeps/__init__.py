"""Hyperparameter sweeps with Optuna: ``geoft sweep -c config.yaml --space space.yaml --trials N``.

* :mod:`geoft.sweeps.space`: the space file (dotted config keys, float/int/categorical), checked
  against the config before the first trial.
* :mod:`geoft.sweeps.study`: the study, its storage, and one ``geoft fit`` run per trial.
* :mod:`geoft.sweeps.command`: the command line.
"""
