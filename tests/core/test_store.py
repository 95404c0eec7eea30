"""Model store: atomic publish, retire, versions never reused, one writer at a time."""

import os
import threading
import time

import pytest

from modelops.core.errors import LockBusyError, StoreError
from modelops.core.store import ModelStore


def fake_candidate(tmp_path, name="cand"):
    d = tmp_path / name
    (d / "variables").mkdir(parents=True, exist_ok=True)
    (d / "saved_model.pb").write_bytes(b"pb")
    (d / "variables" / "variables.index").write_bytes(b"idx")
    return d


def test_publish_appears_complete_with_metrics(tmp_path):
    store = ModelStore(tmp_path / "models")
    v = store.reserve_version()
    store.publish(fake_candidate(tmp_path), v, {"test_accuracy_percent": 99.0})
    assert store.versions() == [1]
    assert (store.path(1) / "variables" / "variables.index").exists()
    assert store.metrics(1) == {"test_accuracy_percent": 99.0}
    assert not [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]


def test_numbers_are_never_reused_after_reject_or_retire(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.publish(fake_candidate(tmp_path), store.reserve_version(), {})
    rejected = store.reserve_version()  # reserved for a candidate the gate rejected
    store.publish(fake_candidate(tmp_path), store.reserve_version(), {})
    store.retire(3)
    assert rejected == 2
    assert store.reserve_version() == 4
    (store.root / ".last_version").unlink()  # even without the counter, retired ones count
    assert store.reserve_version() == 4


def test_retire_moves_the_version_out_of_the_served_path(tmp_path):
    store = ModelStore(tmp_path / "models")
    for _ in range(2):
        store.publish(fake_candidate(tmp_path), store.reserve_version(), {"v": 1})
    store.retire(2)
    assert store.versions() == [1]
    assert store.retired() == [2]
    assert store.metrics(2, retired=True) == {"v": 1}
    with pytest.raises(StoreError, match="version 7 is not in"):
        store.retire(7)


def test_stale_temp_dirs_are_ignored_by_readers_and_cleaned(tmp_path):
    store = ModelStore(tmp_path / "models")
    (store.root / ".tmp-5" / "variables").mkdir(parents=True)
    assert store.versions() == []
    assert store.clean_stale() == [".tmp-5"]
    assert not (store.root / ".tmp-5").exists()


def test_a_failed_copy_leaves_no_numeric_dir(tmp_path, monkeypatch):
    store = ModelStore(tmp_path / "models")

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("modelops.core.store.shutil.copyfile", disk_full)
    with pytest.raises(StoreError, match="no space left"):
        store.publish(fake_candidate(tmp_path), 1, {})
    assert store.versions() == []
    assert [p.name for p in store.root.iterdir() if not p.name.startswith(".lock")] == []


def test_read_only_models_dir_is_a_clear_error(tmp_path, monkeypatch):
    store = ModelStore(tmp_path / "models")

    def read_only(*_a, **_k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("modelops.core.store.os.rename", read_only)
    with pytest.raises(StoreError, match="not writable"):
        store.publish(fake_candidate(tmp_path), 1, {})
    assert store.versions() == []


def test_lock_excludes_a_second_writer_and_names_the_holder(tmp_path):
    store = ModelStore(tmp_path / "models")
    with store.lock(), pytest.raises(LockBusyError, match=r"another retrain or rollback is running \(pid"):
        ModelStore(tmp_path / "models").lock().__enter__()


def test_lock_holder_names_a_live_writer_only(tmp_path):
    store = ModelStore(tmp_path / "models")
    assert store.lock_holder() is None
    with store.lock():
        pid, since = store.lock_holder()
        assert pid == os.getpid() and abs(since - time.time()) < 5
    assert store.lock_holder() is None
    (tmp_path / "models/.lock").write_text("pid 999999999 since 2026-01-04T02:00:00Z")  # killed holder's line
    assert store.lock_holder() is None


def test_lock_waits_for_the_holder_when_asked(tmp_path):
    store = ModelStore(tmp_path / "models")
    released = threading.Event()
    order = []

    def holder():
        with store.lock():
            order.append("first")
            released.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    while not order:
        pass
    threading.Timer(0.3, released.set).start()
    with ModelStore(tmp_path / "models").lock(wait_seconds=10):
        order.append("second")
    t.join()
    assert order == ["first", "second"]


def test_corrupt_metrics_read_as_none(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.publish(fake_candidate(tmp_path), 1, {})
    (store.path(1) / "metrics.json").write_text("{not json")
    assert store.metrics(1) is None


def test_corrupt_version_counter_is_a_clear_error(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.root.mkdir()
    (store.root / ".last_version").write_text("garbage")
    with pytest.raises(StoreError, match="corrupt"):
        store.reserve_version()
