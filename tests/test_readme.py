"""The README stays true: it documents every setting and both of its commands."""

from __future__ import annotations

from pathlib import Path

from storage.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [name for name, _ in Settings.variables() if f"`{name}`" not in README]
    assert missing == [], f"settings missing from the README: {missing}"


def test_the_two_commands_exist_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}" in README
        assert f"\n{target}:" in makefile, f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
