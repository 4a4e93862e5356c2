"""The work of each command of `scheduler.py`, one module per command or family of commands.

scheduler.py builds the parser and dispatches to these handlers; each takes the parsed arguments
and returns an exit status (commands/errors.py). The top layer: it calls daemon/, distributed/,
spiders/, crawl/ and archive/ (never SQL itself), and no package imports it.
"""
