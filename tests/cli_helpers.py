"""Shared helpers of the command-line tests (run the CLI in-process, read its one error line)."""

from __future__ import annotations

from nwb_synergy.cli import main


def run(argv, capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``nwb-synergy ARGV`` run in this process."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The error message: exactly one non-empty line, prefixed by the program name."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("nwb-synergy: error: "), lines[0]
    return lines[0]
