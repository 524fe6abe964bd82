"""An exiting process does not wait long for a storage it cannot reach to free its locks."""

from __future__ import annotations

import subprocess
import sys
import time

CHILD = """
import numpy as np, boto3
from moto.server import ThreadedMotoServer
import tensorlake as tl
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
url = f"http://{host}:{port}"
creds = {"endpoint_url": url, "aws_access_key_id": "t", "aws_secret_access_key": "t",
         "aws_region": "us-east-1"}
boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t",
             aws_secret_access_key="t").create_bucket(Bucket="exit-test")
held = []
for k in range(6):
    ds = tl.empty(f"s3://exit-test/ds{k}", creds=creds)
    with ds:
        ds.create_tensor("x")
        ds.x.append(1)  # the writer lock is held until exit
    held.append(ds)
server.stop()  # the storage is gone: releasing the lock at exit cannot succeed
print("exiting", flush=True)
"""


def test_exit_does_not_hang_on_an_unreachable_storage():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "exiting"
    started = time.monotonic()
    child.communicate(timeout=120)
    # 6 locks, each retried against a dead server, took ~20 s one after the other
    assert time.monotonic() - started < 10
