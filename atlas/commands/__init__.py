"""The ``atlas`` subcommands, one module per group. Heavy imports stay inside the command functions."""
