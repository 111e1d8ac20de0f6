"""The session's secret check can fail: devstack.leaks finds a secret in a log file, and names
the file without showing the secret."""
from __future__ import annotations

from devstack import leaks


def test_a_secret_in_a_log_file_is_found_and_not_shown(tmp_path):
    (tmp_path / "backend-1.log").write_text("INFO serving\nDEBUG token=eyJhbGciOi.secret-token-value\n")
    (tmp_path / "clean.log").write_text("INFO nothing to see\n")
    found = leaks.find(tmp_path, ["secret-token-value", "never-logged-secret"])
    assert found == ["backend-1.log: se... (18 chars)"]
    assert "secret-token-value" not in found[0]
