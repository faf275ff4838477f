"""``python -m qwr_fast.cli SCRIPT ARGS``: run a console script by name (``qwr-train``,
``qwr-collect``, ``aql-train``, ``ppo-train``, ``dqn-train``, ``qwr-search``, and ``demo``,
the ``make demo`` job), e.g. from a venv whose ``bin/`` is not on the PATH."""

import sys

from qwr_fast.cli import demo, qwr_collect, search, train

SCRIPTS = {
    "qwr-train": train.qwr_train,
    "aql-train": train.aql_train,
    "ppo-train": train.ppo_train,
    "dqn-train": train.dqn_train,
    "qwr-collect": qwr_collect.main,
    "qwr-search": search.main,
    "rl-search": search.main,
    "demo": demo.main,
}

if len(sys.argv) < 2 or sys.argv[1] not in SCRIPTS:
    print(f"usage: python -m qwr_fast.cli {{{','.join(SCRIPTS)}}} ARGS", file=sys.stderr)
    sys.exit(2)
sys.exit(SCRIPTS[sys.argv[1]](sys.argv[2:]))
