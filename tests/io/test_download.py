import hashlib
import socket

import pytest

from vlwm.io.download import (ChecksumMismatchError, Download, DownloadError, RetryPolicy, UnreachableError, fetch)
from vlwm.io.lock import DownloadLock

FAST = RetryPolicy(attempts=4, backoff_s=0.01, connect_timeout_s=2.0, read_timeout_s=5.0)
BODY = bytes(range(256)) * 4000     # 1,024,000 bytes


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_plain_download_through_a_redirect(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    spec = Download(f"{base}/redirect/w.pth", tmp_path / "w.pth", sha256=_sha(BODY), size=len(BODY))
    assert fetch(spec, FAST, progress=False).read_bytes() == BODY
    assert not spec.part.exists()


def test_resume_after_cut_connection(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    st.cut_after, st.cuts_left = 300_000, 2          # two responses are cut
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth", sha256=_sha(BODY))
    assert fetch(spec, FAST, progress=False).read_bytes() == BODY
    ranges = [r for _, r in st.requests]
    assert ranges == [None, "bytes=300000-", "bytes=600000-"]


def test_part_file_of_an_earlier_run_is_resumed(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth", sha256=_sha(BODY))
    spec.part.write_bytes(BODY[:1000])
    fetch(spec, FAST, progress=False)
    assert spec.dest.read_bytes() == BODY and st.requests[0][1] == "bytes=1000-"


def test_server_ignoring_range_restarts_the_file(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    st.ignore_range = True
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth", sha256=_sha(BODY))
    spec.part.write_bytes(BODY[:1000])
    assert fetch(spec, FAST, progress=False).read_bytes() == BODY   # 200: not appended to the part


def test_checksum_mismatch_never_leaves_the_final_name(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth", sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        fetch(spec, FAST, progress=False)
    assert not spec.dest.exists() and not spec.part.exists()
    assert spec.rejected.read_bytes() == BODY


def test_present_file_is_verified_not_downloaded(http_server, tmp_path):
    base, st = http_server
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth", sha256=_sha(BODY))
    spec.dest.write_bytes(BODY)
    fetch(spec, FAST, progress=False)
    assert st.requests == []
    spec.dest.write_bytes(b"other")
    with pytest.raises(ChecksumMismatchError, match="delete it"):
        fetch(spec, FAST, progress=False)


def test_gives_up_after_bounded_retries_and_keeps_the_part(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    st.cut_after, st.cuts_left = 10, 100
    spec = Download(f"{base}/w.pth", tmp_path / "w.pth")
    with pytest.raises(DownloadError, match="gave up after 4 attempts"):
        fetch(spec, FAST, progress=False)
    assert len(st.requests) == 4 and spec.part.stat().st_size == 40 and not spec.dest.exists()


def test_http_404_is_not_retried(http_server, tmp_path):
    base, st = http_server
    with pytest.raises(DownloadError, match="404"):
        fetch(Download(f"{base}/missing", tmp_path / "m"), FAST, progress=False)
    assert len(st.requests) == 1


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("where", ["closed-port", "unresolvable-name"])
def test_offline_fails_fast_and_says_where_to_put_the_file(tmp_path, where):
    url = f"http://127.0.0.1:{_closed_port()}/w.pth" if where == "closed-port" else "http://nonexistent.invalid/w.pth"
    spec = Download(url, tmp_path / "pretrained" / "w.pth")
    slept = []
    with pytest.raises(UnreachableError) as err:
        fetch(spec, RetryPolicy(attempts=5, backoff_s=10.0, connect_timeout_s=3.0), progress=False,
              sleep=slept.append)
    assert slept == []                                        # no retries, no back-off for connection failures
    msg = str(err.value)
    assert url in msg and str(spec.dest.resolve()) in msg and "place it at" in msg


def test_lock_file_round_trip(http_server, tmp_path):
    base, st = http_server
    st.files["/w.pth"] = BODY
    lock = DownloadLock.at(tmp_path)
    spec = Download(f"{base}/w.pth", tmp_path / "pretrained" / "w.pth")
    fetch(spec, FAST, progress=False)
    entry = lock.record(spec, _sha(BODY))
    again = DownloadLock.at(tmp_path)
    assert again.get(spec.dest) == entry and entry.size == len(BODY)
    assert (tmp_path / "pretrained" / "downloads.lock.json").is_file()
    locked = again.expect(spec)
    assert locked.sha256 == _sha(BODY) and locked.size == len(BODY)
    # A different URL for the same path is not held to the old digest.
    assert again.expect(Download(f"{base}/other", spec.dest)).sha256 is None
