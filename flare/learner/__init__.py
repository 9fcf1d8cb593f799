"""The learner server: a run from its config (``flare train``), its run directory and
checkpoints, and the ``flare.learner.v1`` Learner service that reports on it.

Modules: ``config`` (the TOML schema), ``zoo`` and ``build`` (a config onto the Python
API), ``environments`` (the ``[env]`` table), ``learner`` (``Learner``: all of it around
one Manager), ``run_dir``, ``checkpoint``, ``tensorboard_log``, ``progress``, ``tracker``
and ``status`` (what the service reports), ``train_command`` (``flare train``); the
service: ``messages``, ``servicer``, ``service``, ``client``, ``commands`` (``flare
status``, ``flare checkpoint``, ``flare stop``).
"""
