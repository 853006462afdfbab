"""Starting the sandbox without its binaries says how to install them and writes nothing."""

from __future__ import annotations

import pytest

from sandbox import control


def test_missing_binary_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(control, "_SBIN", (str(tmp_path),))
    with pytest.raises(control.SandboxError) as exc:
        control.Sandbox.up(tmp_path / "sb")
    assert str(exc.value) == (
        "prometheus is not installed; install it with: apt-get install -y --no-install-recommends prometheus "
        "prometheus-alertmanager prometheus-pushgateway nginx"
    )
    assert not (tmp_path / "sb").exists()  # nothing half-written
