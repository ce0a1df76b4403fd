"""One module per subcommand: each takes parsed options and returns data for the CLI to print."""
