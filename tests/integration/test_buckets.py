"""Bucket operations (ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation) and tenant isolation, through boto3 and raw signed
requests."""

from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config

import helpers as H
from conftest import running_server


def names(client):
    return [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_list_buckets_sorted_with_owner(kura_server_module, s3_module):
    created = ["lb-zeta", "lb-alpha", "lb-mid.dot", "lb-0num"]
    for b in created:
        assert s3_module.create_bucket(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 200
    r = s3_module.list_buckets()
    got = [b["Name"] for b in r["Buckets"] if b["Name"].startswith("lb-")]
    assert got == sorted(created)
    assert all(b["CreationDate"] is not None for b in r["Buckets"])
    assert r["Owner"]["ID"]
    # The raw document is S3's ListAllMyBucketsResult.
    resp = H.raw(kura_server_module, "GET", "/")
    assert resp.status == 200
    assert b"<ListAllMyBucketsResult" in resp.body
    assert resp.header("x-amz-request-id")


def test_create_bucket_plain_and_location(s3_module):
    r = s3_module.create_bucket(Bucket="cb-plain")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Location"] == "/cb-plain"
    loc = s3_module.get_bucket_location(Bucket="cb-plain")
    assert loc["LocationConstraint"] is None     # us-east-1 reads as empty
    h = s3_module.head_bucket(Bucket="cb-plain")
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"


def test_create_bucket_with_location_constraint_body(kura_server_module):
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>us-east-1</LocationConstraint>"
            b"</CreateBucketConfiguration>")
    r = H.raw(kura_server_module, "PUT", "/cb-with-lc", body=body)
    assert r.status == 200, r
    empty = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
             b"</CreateBucketConfiguration>")
    r = H.raw(kura_server_module, "PUT", "/cb-with-empty-config", body=empty)
    assert r.status == 200, r
    assert "cb-with-lc" in names(kura_server_module.client())


def test_create_bucket_wrong_region(kura_server_module, s3_module):
    H.expect_error("InvalidLocationConstraint", 400, s3_module.create_bucket,
                   Bucket="cb-wrong-region",
                   CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert "cb-wrong-region" not in names(s3_module)
    r = H.raw(kura_server_module, "PUT", "/cb-bad-xml", body=b"<CreateBucketConfiguration>")
    H.assert_s3_error(r, 400, "MalformedXML")
    assert "cb-bad-xml" not in names(s3_module)


def test_region_configured_server(tmp_path):
    """A server configured for another region: buckets report it, the
    client must sign for it, and a us-east-1 constraint is refused."""
    with running_server(tmp_path, "[server]\nregion = eu-west-3\n") as server:
        c = boto3.session.Session(
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="eu-west-3").client(
                "s3", endpoint_url=server.endpoint,
                config=Config(signature_version="s3v4",
                              s3={"addressing_style": "path"},
                              retries={"total_max_attempts": 1}))
        c.create_bucket(Bucket="paris-bucket",
                        CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        assert c.get_bucket_location(Bucket="paris-bucket")["LocationConstraint"] == "eu-west-3"
        H.expect_error("InvalidLocationConstraint", 400, c.create_bucket,
                       Bucket="other-bucket",
                       CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        # Signed for us-east-1: the scope's region is wrong.
        r = H.raw(server, "GET", "/")
        err = H.assert_s3_error(r, 400, "AuthorizationHeaderMalformed")
        assert "eu-west-3" in err["Message"]


def test_head_bucket(s3_module):
    s3_module.create_bucket(Bucket="hb-present")
    assert s3_module.head_bucket(Bucket="hb-present")["ResponseMetadata"]["HTTPStatusCode"] == 200
    code, status, _ = H.client_error(s3_module.head_bucket, Bucket="hb-absent")
    assert status == 404


def test_delete_bucket_and_not_empty(kura_server_module, s3_module):
    s3_module.create_bucket(Bucket="db-full")
    s3_module.put_object(Bucket="db-full", Key="x", Body=b"1")
    H.expect_error("BucketNotEmpty", 409, s3_module.delete_bucket, Bucket="db-full")
    assert s3_module.get_object(Bucket="db-full", Key="x")["Body"].read() == b"1"
    s3_module.delete_object(Bucket="db-full", Key="x")
    r = s3_module.delete_bucket(Bucket="db-full")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "db-full" not in names(s3_module)
    H.expect_error("NoSuchBucket", 404, s3_module.list_objects_v2, Bucket="db-full")
    H.expect_error("NoSuchBucket", 404, s3_module.delete_bucket, Bucket="db-full")
    # The name is free again, and the new bucket is empty.
    s3_module.create_bucket(Bucket="db-full")
    assert s3_module.list_objects_v2(Bucket="db-full")["KeyCount"] == 0


def test_bucket_already_owned_by_you(s3_module):
    s3_module.create_bucket(Bucket="dup-mine")
    H.expect_error("BucketAlreadyOwnedByYou", 409, s3_module.create_bucket,
                   Bucket="dup-mine")
    assert names(s3_module).count("dup-mine") == 1


def test_bucket_already_exists_for_other_tenant(s3_module, tenant_module):
    s3_module.create_bucket(Bucket="dup-root-owned")
    H.expect_error("BucketAlreadyExists", 409, tenant_module.create_bucket,
                   Bucket="dup-root-owned")
    assert "dup-root-owned" not in names(tenant_module)
    tenant_module.create_bucket(Bucket="dup-tenant-owned")
    H.expect_error("BucketAlreadyExists", 409, s3_module.create_bucket,
                   Bucket="dup-tenant-owned")


BAD_NAMES = [
    "ab",                       # too short
    "a" * 64,                   # too long
    "UpperCase",
    "under_score",
    "-leading-dash",
    "trailing-dash-",
    ".leading-dot",
    "trailing-dot.",
    "double..dot",
    "dash-.dot",
    "dot.-dash",
    "192.168.5.4",              # IP address form
    "xn--punycode",
    "sthree-prefix",
    "bucket-s3alias",
    "bucket--ol-s3",
    "bang!name",
    "space name",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_bucket_name(kura_server_module, name):
    r = H.raw(kura_server_module, "PUT", "/" + quote(name, safe=""))
    H.assert_s3_error(r, 400, "InvalidBucketName")


def test_valid_edge_names(s3_module):
    for name in ["abc", "a" * 63, "1.2.3", "a-b.c-d", "0123456789"]:
        s3_module.create_bucket(Bucket=name)
        assert name in names(s3_module)


def test_no_such_bucket(kura_server_module, s3_module):
    b = "nsb-absent"
    H.expect_error("NoSuchBucket", 404, s3_module.get_object, Bucket=b, Key="k")
    H.expect_error("NoSuchBucket", 404, s3_module.put_object, Bucket=b, Key="k", Body=b"")
    H.expect_error("NoSuchBucket", 404, s3_module.delete_object, Bucket=b, Key="k")
    H.expect_error("NoSuchBucket", 404, s3_module.list_objects_v2, Bucket=b)
    H.expect_error("NoSuchBucket", 404, s3_module.get_bucket_location, Bucket=b)
    r = H.raw(kura_server_module, "GET", "/" + b)
    err = H.assert_s3_error(r, 404, "NoSuchBucket", kura_server_module)
    assert err.get("BucketName") == b
    assert "nsb-absent" not in names(s3_module)


# -- tenancy -----------------------------------------------------------------

def _assert_isolated(owner, other, bucket):
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="secret.txt", Body=b"owner data")
    assert bucket not in names(other)
    denied = [
        (other.get_object, {"Bucket": bucket, "Key": "secret.txt"}),
        (other.put_object, {"Bucket": bucket, "Key": "secret.txt", "Body": b"evil"}),
        (other.put_object, {"Bucket": bucket, "Key": "new.txt", "Body": b"evil"}),
        (other.delete_object, {"Bucket": bucket, "Key": "secret.txt"}),
        (other.list_objects_v2, {"Bucket": bucket}),
        (other.list_objects, {"Bucket": bucket}),
        (other.delete_bucket, {"Bucket": bucket}),
        (other.get_bucket_location, {"Bucket": bucket}),
    ]
    for fn, kw in denied:
        H.expect_error("AccessDenied", 403, fn, **kw)
    for fn, kw in [(other.head_object, {"Bucket": bucket, "Key": "secret.txt"}),
                   (other.head_bucket, {"Bucket": bucket})]:
        _, status, _ = H.client_error(fn, **kw)
        assert status == 403
    # A URL presigned with the other tenant's credentials is refused too.
    url = other.generate_presigned_url("get_object",
                                       Params={"Bucket": bucket, "Key": "secret.txt"})
    r = requests.get(url, timeout=30)
    assert r.status_code == 403 and H.parse_error(r.content)["Code"] == "AccessDenied"
    # Nothing changed for the owner.
    assert owner.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"owner data"
    keys = [o["Key"] for o in owner.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["secret.txt"]
    assert bucket in names(owner)


def test_tenant_cannot_touch_root_bucket(s3_module, tenant_module):
    _assert_isolated(s3_module, tenant_module, "iso-root-bucket")


def test_root_cannot_touch_tenant_bucket(s3_module, tenant_module):
    _assert_isolated(tenant_module, s3_module, "iso-tenant-bucket")


def test_tenants_list_only_their_buckets(kura_server_module, s3_module, tenant_module):
    tenant_module.create_bucket(Bucket="own-t1")
    other = kura_server_module.client(*kura_server_module.add_tenant("second-tenant"))
    other.create_bucket(Bucket="own-t2")
    assert "own-t1" in names(tenant_module) and "own-t2" not in names(tenant_module)
    assert names(other) == ["own-t2"]
    assert "own-t1" not in names(s3_module) and "own-t2" not in names(s3_module)
