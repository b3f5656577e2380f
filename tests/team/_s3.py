"""An S3 endpoint that checks signatures as AWS does: moto's server, with an IAM user allowed everything and its
authentication switched on, so a wrong secret or an unknown key is refused. (The stack's own endpoint leaves it
off: moto's check fails the presigned URLs through which MLflow's client downloads proxied artifacts.)"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import stack


@contextmanager
def checking_endpoint(log: Path, bucket: str) -> Iterator[tuple[str, dict]]:
    """A moto server on loopback holding ``bucket``, its requests logged to ``log`` (one line each); yields its URL
    and the only key it accepts (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)."""
    port = stack.free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        stack.wait_for(port, "moto_server", process=server)
        url = f"http://127.0.0.1:{port}"
        anyone = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "setup",
                  "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="desk")
        iam.put_user_policy(UserName="desk", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="desk")["AccessKey"]
        boto3.client("s3", **anyone).create_bucket(Bucket=bucket)
        request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):  # from now on every request is signed and checked
            pass
        yield url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                    "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.terminate()
        server.wait(10)
