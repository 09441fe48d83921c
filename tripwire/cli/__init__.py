"""The `tripwire` command line: one module per command group; `app` builds the root command."""
