"""``python -m puppetops`` = the ``puppetops`` console script."""
from .cli.program import main

main()
