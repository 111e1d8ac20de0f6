"""Settings parsing: typed values, and one clear line for a bad one."""
from __future__ import annotations

import pytest

from analytics.settings import Settings, SettingsError


def test_direct_writes_reads_true_and_false():
    assert Settings.from_env({}, env_file=None).DIRECT_WRITES is True
    assert Settings.from_env({"DIRECT_WRITES": "false"}, env_file=None).DIRECT_WRITES is False
    assert Settings.from_env({"DIRECT_WRITES": " On "}, env_file=None).DIRECT_WRITES is True
    with pytest.raises(SettingsError, match="DIRECT_WRITES must be true or false"):
        Settings.from_env({"DIRECT_WRITES": "maybe"}, env_file=None)
