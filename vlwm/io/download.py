"""Resumable, verified HTTP downloads with the standard library only.

A :class:`Download` names a URL, its destination and, when known, its sha256 and size.
:func:`fetch` writes into ``<dest>.part``, resumes that file with ``Range: bytes=N-`` (a server that
answers ``200`` instead of ``206`` ignores ranges: the part is restarted), retries broken transfers
with exponential back-off, checks size and sha256, and only then renames the part to ``dest``
(atomic ``os.replace``).  A file is never left under its final name unverified.

Failure policy
--------------
- Name resolution, refused connections, unreachable networks and connect timeouts are *not*
  retried: without a network :func:`fetch` fails within ``connect_timeout`` seconds with
  :class:`UnreachableError`, whose message names the URL and the exact path to place the file at.
- Transfers cut mid-body, read timeouts, ``5xx`` and ``429`` answers are retried up to
  ``RetryPolicy.attempts`` times, resuming from the part file each time.
- Other ``4xx`` answers fail at once (:class:`DownloadError`).
- A checksum mismatch renames the data to ``<dest>.rejected`` (kept for inspection, never resumed)
  and raises :class:`ChecksumMismatchError`.  When the bad file came from a resumed part, the
  download is first repeated once from scratch.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

CHUNK_BYTES = 1 << 20
"""Read/write block of a transfer and of hashing (1 MiB)."""
MAX_REDIRECTS = 8
"""Redirects followed per request (Tsinghua Cloud answers ``dl=1`` links with a 302)."""
USER_AGENT = "vlwm-download/1"
PART_SUFFIX = ".part"
"""Suffix of a file being downloaded; resumed by the next run."""
REJECTED_SUFFIX = ".rejected"
"""Suffix a downloaded file gets when it fails verification; never resumed."""


@dataclass(frozen=True)
class Download:
    """One file to fetch."""

    url: str
    """http(s) address."""
    dest: Path
    """Final path of the file."""
    sha256: str | None = None
    """Expected lower-case hex digest; None when not known yet (it is recorded in the lock file)."""
    size: int | None = None
    """Expected size in bytes, or None."""

    @property
    def part(self) -> Path:
        """Where the bytes go while downloading."""
        return self.dest.with_name(self.dest.name + PART_SUFFIX)

    @property
    def rejected(self) -> Path:
        """Where a file that failed verification is moved."""
        return self.dest.with_name(self.dest.name + REJECTED_SUFFIX)


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries of :func:`fetch`."""

    attempts: int = 5
    """Transfer attempts in all (the first one included) for retryable failures."""
    backoff_s: float = 1.0
    """Wait before the second attempt; doubles after each further failure."""
    max_backoff_s: float = 30.0
    """Upper bound of one wait."""
    connect_timeout_s: float = 10.0
    """Seconds to resolve and connect; a failure here is not retried (offline detection)."""
    read_timeout_s: float = 60.0
    """Seconds without a byte from an open connection before the attempt is abandoned (retried)."""

    def delay(self, failures: int) -> float:
        """Wait after ``failures`` consecutive failed attempts (>= 1)."""
        return min(self.backoff_s * 2 ** (failures - 1), self.max_backoff_s)


class DownloadError(RuntimeError):
    """A download failed; the message says which URL, where the file should go and what to do."""


class UnreachableError(DownloadError):
    """The host could not be resolved or connected to (no network, firewall, host down)."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not have the expected sha256 or size."""


class _Retryable(Exception):
    """A transfer attempt failed in a way worth retrying (cut connection, 5xx, read timeout)."""


def manual_hint(spec: Download) -> str:
    """How to place ``spec`` by hand."""
    return (f"download {spec.url} with a browser or another machine and place it at {spec.dest.resolve()} "
            "(then re-run: a present file is verified, not downloaded again)")


def sha256_file(path: str | os.PathLike, chunk: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_verified(spec: Download) -> bool:
    """True when ``spec.dest`` exists and matches the expected size and sha256 (those known)."""
    if not spec.dest.is_file():
        return False
    if spec.size is not None and spec.dest.stat().st_size != spec.size:
        return False
    return spec.sha256 is None or sha256_file(spec.dest) == spec.sha256.lower()


def fetch(spec: Download, policy: RetryPolicy = RetryPolicy(), progress: bool = True,
          sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``spec`` (or keep a present, verified file) and return ``spec.dest``.

    Raises :class:`UnreachableError`, :class:`ChecksumMismatchError` or :class:`DownloadError`.
    A present ``dest`` whose sha256 differs from ``spec.sha256`` is not overwritten: the error says
    to delete it.
    """
    if spec.dest.is_file():
        if is_verified(spec):
            return spec.dest
        raise ChecksumMismatchError(
            f"{spec.dest} is present but does not match the expected "
            f"{'sha256 ' + spec.sha256 if spec.sha256 else f'size {spec.size} bytes'}: delete it to download "
            f"it again from {spec.url}, or fix the entry in the lock file if the file is right")
    spec.dest.parent.mkdir(parents=True, exist_ok=True)
    resumed = _transfer(spec, policy, progress, sleep)
    try:
        _verify_part(spec)
    except ChecksumMismatchError:
        if not resumed:
            raise
        _transfer(spec, policy, progress, sleep)    # the old part may hold stale bytes: once more from zero
        _verify_part(spec)
    os.replace(spec.part, spec.dest)
    return spec.dest


def _verify_part(spec: Download) -> None:
    size = spec.part.stat().st_size
    problem = None
    if spec.size is not None and size != spec.size:
        problem = f"{size} bytes instead of {spec.size}"
    elif spec.sha256 is not None:
        digest = sha256_file(spec.part)
        if digest != spec.sha256.lower():
            problem = f"sha256 {digest} instead of {spec.sha256.lower()}"
    if problem:
        os.replace(spec.part, spec.rejected)
        raise ChecksumMismatchError(f"{spec.url}: downloaded file has {problem}; moved to {spec.rejected} "
                                    f"(not used).  Re-run to download it again, or {manual_hint(spec)}")


def _transfer(spec: Download, policy: RetryPolicy, progress: bool, sleep: Callable[[float], None]) -> bool:
    """Fill ``spec.part`` completely; True when the first attempt resumed an existing part."""
    resumed = spec.part.is_file() and spec.part.stat().st_size > 0
    failures = 0
    while True:
        try:
            _attempt(spec, policy, progress)
            return resumed
        except _Retryable as err:
            failures += 1
            if failures >= policy.attempts:
                raise DownloadError(f"{spec.url}: gave up after {failures} attempts (last: {err}); the partial "
                                    f"file {spec.part} is kept and resumed by the next run.  Or "
                                    f"{manual_hint(spec)}") from None
            sleep(policy.delay(failures))


def _attempt(spec: Download, policy: RetryPolicy, progress: bool) -> None:
    offset = spec.part.stat().st_size if spec.part.is_file() else 0
    if spec.size is not None and offset > spec.size:
        spec.part.unlink()
        offset = 0
    if spec.size is not None and offset == spec.size:
        return
    conn, resp = _open(spec, policy, offset)
    try:
        if resp.status == 416:          # range not satisfiable: the part is complete or bogus
            total = _range_total(resp.getheader("Content-Range"))
            if total is not None and total == offset:
                return
            spec.part.unlink(missing_ok=True)
            raise _Retryable(f"server refused the range {offset}- (size {total}); restarting from zero")
        if resp.status == 206:
            start = _range_start(resp.getheader("Content-Range"))
            if start != offset:
                spec.part.unlink(missing_ok=True)
                raise _Retryable(f"server answered a range starting at {start}, asked for {offset}; restarting")
            mode = "ab"
        elif resp.status == 200:
            offset, mode = 0, "wb"      # the server ignored Range (or there was nothing to resume)
        elif resp.status == 429 or resp.status >= 500:
            raise _Retryable(f"HTTP {resp.status} {resp.reason}")
        else:
            raise DownloadError(f"{spec.url}: HTTP {resp.status} {resp.reason}.  {manual_hint(spec)}")
        length = resp.getheader("Content-Length")
        remaining = int(length) if length is not None else None
        total = offset + remaining if remaining is not None else spec.size
        got = 0
        with open(spec.part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                               unit_divisor=1024, desc=spec.dest.name, disable=not progress,
                                               leave=False) as bar:
            while True:
                try:
                    block = resp.read(CHUNK_BYTES) if remaining is None else resp.read(min(CHUNK_BYTES, remaining - got))
                except (OSError, http.client.HTTPException) as err:    # timeout, reset, IncompleteRead
                    raise _Retryable(f"connection broken after {offset + got} bytes: {err!r}") from None
                if not block:
                    break
                out.write(block)
                got += len(block)
                bar.update(len(block))
                if remaining is not None and got >= remaining:
                    break
        if remaining is not None and got < remaining:
            raise _Retryable(f"connection closed after {offset + got} of {offset + remaining} bytes")
    finally:
        conn.close()


def _open(spec: Download, policy: RetryPolicy, offset: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Connect (following redirects) and send the GET; connection-phase failures raise UnreachableError."""
    url = spec.url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError(f"{url}: not an http(s) address")
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=policy.connect_timeout_s,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=policy.connect_timeout_s)
        try:
            conn.connect()
        except (socket.gaierror, ConnectionRefusedError, socket.timeout, OSError) as err:
            conn.close()
            raise UnreachableError(
                f"cannot reach {parts.hostname} for {url} ({_describe(err)}) within "
                f"{policy.connect_timeout_s:g} s: no network, or the host is down or blocked.  "
                f"{manual_hint(spec)}") from None
        conn.sock.settimeout(policy.read_timeout_s)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise _Retryable(f"no answer from {parts.hostname}: {err!r}") from None
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            url = urllib.parse.urljoin(url, resp.getheader("Location"))
            conn.close()
            continue
        return conn, resp
    raise DownloadError(f"{spec.url}: more than {MAX_REDIRECTS} redirects")


def _describe(err: BaseException) -> str:
    if isinstance(err, socket.gaierror):
        return f"name resolution failed: {err.strerror or err}"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, socket.timeout):
        return "connect timed out"
    return f"{type(err).__name__}: {err}"


def _range_start(header: str | None) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``."""
    try:
        return int(header.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _range_total(header: str | None) -> int | None:
    """TOTAL of ``Content-Range: bytes */TOTAL`` (or of a full range header)."""
    try:
        return int(header.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None
