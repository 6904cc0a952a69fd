"""The download path, exercised for real: the offline files served over HTTP from 127.0.0.1 (``MEDLIB_MIRROR``)."""

import functools
import http.server
import threading

import pytest

from medlib import data


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list = []

    def log_message(self, format, *args):
        self.requests.append(self.path)


@pytest.fixture
def mirror(real_data, tmp_path, monkeypatch):
    """A local HTTP server whose folder (``served``) holds what it serves, and an empty data root to fill."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("MEDLIB_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("MEDLIB_OFFLINE", "0")
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "data"))
    _Quiet.requests = []
    yield served, tmp_path / "data"
    server.shutdown()
    server.server_close()


def test_missing_file_is_downloaded_from_the_mirror_and_checked(mirror, real_data):
    served, root = mirror
    (served / "breastmnist_64.npz").write_bytes((real_data / "breastmnist_64.npz").read_bytes())
    assert data.download_url("breastmnist", 64).endswith("/breastmnist_64.npz")
    assert data.ensure_file("breastmnist", 64) == root / "breastmnist_64.npz"
    assert data.load("breastmnist", "test", 64).images.shape == (156, 1, 64, 64)
    assert _Quiet.requests == ["/breastmnist_64.npz"]
    assert sorted(p.name for p in root.iterdir()) == ["breastmnist_64.npz"]


def test_broken_download_is_refused_leaves_nothing_and_a_retry_after_the_fix_succeeds(mirror, real_data):
    served, root = mirror
    good = (real_data / "breastmnist.npz").read_bytes()
    (served / "breastmnist.npz").write_bytes(good[: len(good) // 2])  # a truncated file
    with pytest.raises(data.DataError, match="could not be downloaded .* sent a file whose MD5 is") as e:
        data.ensure_file("breastmnist", 28)
    assert "breastmnist.npz" in str(e.value) and "\n" not in str(e.value)
    assert list(root.iterdir()) == []  # no partial file, no temporary file

    (served / "breastmnist.npz").write_bytes(good)  # the server is fixed
    assert data.load("breastmnist", "train").class_counts() == [147, 399]
    assert _Quiet.requests == ["/breastmnist.npz", "/breastmnist.npz"]


def test_file_the_mirror_lacks_is_named_with_the_reason(mirror):
    _, root = mirror
    with pytest.raises(data.DataError, match=r"could not be downloaded \(HTTP Error 404"):
        data.ensure_file("retinamnist", 28)
    assert list(root.iterdir()) == []


def test_without_a_mirror_the_official_url_is_used(monkeypatch):
    monkeypatch.delenv("MEDLIB_MIRROR", raising=False)
    assert data.download_url("breastmnist", 28) == data.file_info("breastmnist", 28)[0]
