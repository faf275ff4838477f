"""Entry points, one module each (the ``[project.scripts]`` of pyproject.toml):

- ``qwr-train``, ``aql-train``, ``ppo-train``, ``dqn-train``: :mod:`qwr_fast.cli.train`
- ``qwr-collect``: :mod:`qwr_fast.cli.qwr_collect`
- ``qwr-search`` (alias ``rl-search``): :mod:`qwr_fast.cli.search`

and their shared argument handling, :mod:`qwr_fast.cli.common`.
"""
