"""Fetch pretrained weights, or fail at once with an :class:`~geoft.errors.OfflineError`.

Libraries retry downloads for minutes when the network is down. Here a file already in the local
cache is used as is; otherwise the host is probed (or ``HF_HUB_OFFLINE`` honoured) first, so an
offline machine gets a clear message that names ``ckpt_path`` and the file to fetch elsewhere.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from geoft.errors import CheckpointError, OfflineError

PROBE_TIMEOUT_S = 3.0


def hf_offline_mode() -> bool:
    """True when the user asked Hugging Face libraries not to use the network."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    With an HTTP(S) proxy configured the probe can't tell, so it answers True and lets the
    download itself (with its own short timeout) decide.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def offline_error(what: str, source: str, reason: str) -> OfflineError:
    """The error raised when ``what`` (e.g. "Prithvi-EO-2.0-300M weights") can't be downloaded."""
    return OfflineError(
        f"Cannot download {what}: {reason}.",
        hint=(
            f"Download {source} on a machine with internet access, copy it here and pass its path as "
            "ckpt_path=... (e.g. backbone_ckpt_path in a config); or build with pretrained=False "
            "to start from random weights."
        ),
    )


def hf_download(repo_id: str, filename: str, what: str) -> Path:
    """Path of ``filename`` from the Hugging Face repo ``repo_id``, downloading it when needed."""
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    source = f"https://huggingface.co/{repo_id}/resolve/main/{filename}"
    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename)
    if isinstance(cached, str) and os.path.isfile(cached):
        return Path(cached)
    if hf_offline_mode():
        raise offline_error(what, source, "HF_HUB_OFFLINE is set and the file is not in the local cache")
    host = urlparse(huggingface_hub.constants.ENDPOINT).hostname or "huggingface.co"
    if not host_reachable(host):
        raise offline_error(what, source, f"{host} is unreachable (no internet?)")
    missing = tuple(
        getattr(hf_errors, n)
        for n in ("RepositoryNotFoundError", "RemoteEntryNotFoundError")
        if hasattr(hf_errors, n)
    )
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id=repo_id, filename=filename, etag_timeout=10))
    except hf_errors.LocalEntryNotFoundError as err:  # raised when the Hub can't be reached
        raise offline_error(what, source, f"the download failed ({err})") from err
    except missing as err:
        raise CheckpointError(f"{source} does not exist ({err.__class__.__name__}).") from err
    except Exception as err:  # network stacks (httpx, requests) raise their own types
        raise offline_error(what, source, f"the download failed ({err.__class__.__name__}: {err})") from err


def url_download(url: str, what: str) -> Path:
    """Path of the file at ``url`` in torch hub's cache, downloading it when needed."""
    import torch.hub

    target = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    if target.is_file():
        return target
    if hf_offline_mode():
        raise offline_error(what, url, "HF_HUB_OFFLINE is set and the file is not in the local cache")
    host = urlparse(url).hostname or ""
    if not host_reachable(host):
        raise offline_error(what, url, f"{host} is unreachable (no internet?)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=True)
    except OSError as err:
        raise offline_error(what, url, f"the download failed ({err})") from err
    return target


@dataclass(frozen=True)
class PublishedWeights:
    """A published checkpoint on the Hugging Face Hub."""

    repo_id: str
    filename: str

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}"

    def download(self, variant: str) -> Path:
        """Local path of the file (from the cache or the Hub; offline: :class:`OfflineError`)."""
        return hf_download(self.repo_id, self.filename, what=f"the {variant} weights ({self.filename})")
