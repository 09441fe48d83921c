"""The one shape every refused command line has: exit code 2 and a single `error:` line, no traceback."""

from __future__ import annotations

from click.testing import Result


def one_error_line(result: Result) -> str:
    """Assert that shape on a CliRunner result and return the `error:` line."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
