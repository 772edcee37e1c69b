"""The data dir's lock: processes that have the node open share it; a restore takes it alone or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.data_dir_lock import DataDirInUse, SharedHold, exclusive


def test_holders_share_the_lock_and_a_restore_waits_for_none_of_them(tmp_path: Path) -> None:
    serve, sync = SharedHold(tmp_path), SharedHold(tmp_path)  # two holders at once

    with pytest.raises(DataDirInUse, match="open in another process"), exclusive(tmp_path):
        pytest.fail("taken while the node is open")
    serve.release()
    with pytest.raises(DataDirInUse), exclusive(tmp_path):
        pytest.fail("taken while the node is open")
    sync.release()
    sync.release()  # again: nothing

    with exclusive(tmp_path):  # nobody has it open now
        pass


def test_a_data_dir_where_the_lock_file_cannot_be_made_still_opens(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    not_a_dir = tmp_path / "file"  # as a read-only mount would (as root, permissions do not stop it)
    not_a_dir.write_text("")

    SharedHold(not_a_dir).release()

    assert "cannot hold" in caplog.text
