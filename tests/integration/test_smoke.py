"""Smoke tests: the server starts, answers SigV4-signed requests from boto3
and the aws CLI, and keeps a bucket across a clean restart."""


def bucket_names(client):
    return [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_list_buckets_empty(s3):
    r = s3.list_buckets()
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Buckets"] == []


def test_create_and_list_bucket(s3):
    r = s3.create_bucket(Bucket="smoke-bucket")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert bucket_names(s3) == ["smoke-bucket"]


def test_aws_cli_make_and_list_bucket(aws):
    r = aws("s3api", "list-buckets", "--output", "json")
    assert r.returncode == 0, r.stderr
    r = aws("s3", "mb", "s3://cli-bucket")
    assert r.returncode == 0, r.stderr
    r = aws("s3", "ls")
    assert r.returncode == 0, r.stderr
    assert "cli-bucket" in r.stdout


def test_bucket_survives_restart(kura_server, s3):
    s3.create_bucket(Bucket="durable-bucket")
    kura_server.restart()
    assert bucket_names(kura_server.client()) == ["durable-bucket"]
