"""Finding and aborting multipart uploads that crashed processes left behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from botocore.exceptions import ClientError

from asyncstore_s3._client import S3Client
from asyncstore_s3._errors import error_code

__all__ = ["StaleUpload", "abort_stale_uploads"]


@dataclass(frozen=True)
class StaleUpload:
    """An in-progress multipart upload older than the age asked for."""

    key: str
    """The full S3 key the upload was writing."""
    upload_id: str
    """S3's id of the upload."""
    initiated: datetime
    """When the upload started (UTC)."""


async def abort_stale_uploads(
    client: S3Client, bucket: str, prefix: str, *, older_than: float, dry_run: bool = False
) -> list[StaleUpload]:
    """Abort every multipart upload under ``prefix`` started more than ``older_than`` s ago.

    Uploads that a live process aborts on failure never linger; this sweeps those of
    processes that were killed mid-upload (their parts cost storage until aborted).

    Args:
        client: The S3 client.
        bucket: The bucket to sweep.
        prefix: Only uploads of keys under this prefix are considered.
        older_than: The age in seconds above which an upload counts as stale.
        dry_run: Only report the stale uploads; abort nothing.

    Returns:
        The stale uploads found with ``dry_run``, else those this call aborted (one that
        completed or was aborted meanwhile is left out), oldest first.

    Raises:
        ClientError: The first abort that failed, once every other upload was tried.
    """
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
    stale: list[StaleUpload] = []
    paginator = client.get_paginator("list_multipart_uploads")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Uploads", []):
            initiated = item["Initiated"].astimezone(timezone.utc)
            if initiated < cutoff:
                stale.append(StaleUpload(item["Key"], item["UploadId"], initiated))
    stale.sort(key=lambda upload: upload.initiated)
    if dry_run:
        return stale
    outcomes = [await _abort(client, bucket, upload) for upload in stale]
    failures = [outcome for outcome in outcomes if isinstance(outcome, ClientError)]
    if failures:
        raise failures[0]  # after trying every other upload
    return [upload for upload, outcome in zip(stale, outcomes, strict=True) if outcome is True]


async def _abort(client: S3Client, bucket: str, upload: StaleUpload) -> bool | ClientError:
    """Abort one upload: True if aborted, False if already gone, else the error."""
    try:
        await client.abort_multipart_upload(
            Bucket=bucket, Key=upload.key, UploadId=upload.upload_id
        )
    except ClientError as exc:
        return False if error_code(exc)[0] == "NoSuchUpload" else exc
    return True
