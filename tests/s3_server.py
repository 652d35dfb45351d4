"""An S3 service for tests: moto's server mode on a free loopback port, spoken to over HTTP.

``ThreadedMotoServer`` runs moto's S3 as a real HTTP endpoint in a thread of the test process; nothing is
patched in process, so s3fs, boto3 and child processes reach it exactly as they would reach AWS or MinIO,
through ``AWS_ENDPOINT_URL_S3`` and the usual credential variables (:attr:`S3Server.env`).
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType

import boto3
from moto.server import ThreadedMotoServer

from server_process import free_port

#: The credentials moto accepts (any); given as the standard AWS variables, never as Evergreen settings.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "evergreen-test",
    "AWS_SECRET_ACCESS_KEY": "evergreen-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto's S3 on ``127.0.0.1:<free port>``; ``with S3Server() as s3:`` starts and stops it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables a process needs to use this server: credentials and ``AWS_ENDPOINT_URL_S3``."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self) -> object:
        """A boto3 S3 client of this server (for set-up and for looking behind Evergreen's back)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def fresh_bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"evergreen-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def __enter__(self) -> S3Server:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in every test's report
        self._server.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.stop()
