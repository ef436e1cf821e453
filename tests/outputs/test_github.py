"""GitHub Actions output (outputs/github.py): workflow commands and the job summary, safe from the text an endpoint sends."""

from __future__ import annotations

from comethook_cli.engine.checks import CheckResult
from comethook_cli.outputs import github
from comethook_cli.outputs.wire import CheckSummary


def test_text_from_the_endpoint_cannot_forge_a_workflow_command_or_markdown() -> None:
    hostile = CheckResult("x, y: z", "fail", 12.0, "50% done\n::warning::forged\x1b[2J | <img src=x>")
    [line] = github.workflow_commands("http://h/hook", [hostile])
    assert line == (
        "::error title=comethook check%3A x%2C y%3A z::50%25 done\\n::warning::forged\\x1b[2J | <img src=x> (http://h/hook)"
    )
    assert "\n" not in line and "\x1b" not in line
    markdown = github.summary_markdown("http://h/hook", [hostile], CheckSummary(1, 0, 1, 0, 0.5), reached=False)
    row = markdown.splitlines()[-1]
    assert row == "| x, y: z | ❌ FAIL | 12 ms | 50% done\\n::warning::forged\\x1b[2J \\| &lt;img src=x&gt; |"
    assert "could not be reached" in markdown
