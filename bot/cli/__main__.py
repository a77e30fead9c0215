"""`python -m bot.cli`: the `sealion-bot` command."""

from bot.cli.main import main

main()
