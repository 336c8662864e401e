"""Programs the tests run as processes, by path: ``python tests/helpers/scripts/NAME.py``
(the repository root on PYTHONPATH, or put there by the script).

They sit in a folder of their own because a script's folder comes first on ``sys.path``: run
from tests/helpers, its modules (``memory``, ``skills``, ``tui``...) would shadow the packages
of the same names. ``kernel_matrix`` is also imported by its test."""
