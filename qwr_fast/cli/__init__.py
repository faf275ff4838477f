"""Entry points, one module each (the ``[project.scripts]`` of pyproject.toml):

- ``qwr-train``: :mod:`qwr_fast.cli.qwr_train`
- ``qwr-collect``: :mod:`qwr_fast.cli.qwr_collect`
- ``aql-train``: :mod:`qwr_fast.cli.aql_train`
- ``ppo-train``: :mod:`qwr_fast.cli.ppo_train`
- ``dqn-train``: :mod:`qwr_fast.cli.dqn_train`
- ``qwr-search`` (alias ``rl-search``): :mod:`qwr_fast.cli.search`

and their shared argument handling, :mod:`qwr_fast.cli.common`. Each also runs as
``python -m qwr_fast.cli.<module>``.
"""
