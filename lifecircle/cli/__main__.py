"""``python -m lifecircle.cli``."""

from lifecircle.cli.app import console

console()
