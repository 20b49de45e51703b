"""Fetch a file a user shared in Slack, with the bot token, refusing what isn't the file."""

from __future__ import annotations

import urllib.error
import urllib.request


class DownloadError(RuntimeError):
    """The file could not be fetched; the message says why in words a person can act on."""


def download(url: str, *, token: str, max_bytes: int, timeout: float = 30) -> bytes:
    """Slack serves private files only with the bot token; without it (or without the files:read
    scope) it answers 200 with an HTML sign-in page, which must never be taken for the file."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if "text/html" in response.headers.get("Content-Type", ""):
                raise DownloadError("Slack did not hand over the file (is the files:read scope granted?)")
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DownloadError(f"the file could not be downloaded from Slack ({error})") from None
    if len(data) > max_bytes:
        raise DownloadError(f"the file is larger than {max_bytes // 2**20} MB")
    return data
