"""Clear answers where users hit walls (issue 10, item 7).

- A Signature Version 2 request, header or presigned URL (what aws-cli
  v1's `aws s3 presign` makes by default), is told that only AWS4-HMAC-SHA256 is
  supported, in AWS's words (s3cmd recognises them).
- A credential scope for the wrong region answers with the right one in
  <Region>, as AWS does: s3cmd corrects itself from it, so an s3cfg
  without bucket_location (the README's old one) works.
- Nothing unsupported is silently accepted: CreateBucket asking for object
  lock, public ACLs, grants, ownership controls or directory/tagged bucket
  configurations; MFA Delete; writes asking for a storage class,
  an append offset or a rename kura does not provide.  Each is refused
  before anything changes, with 501 NotImplemented naming what is missing
  (logged below ERROR), or AWS's own error.  GetBucketPolicy answers 404
  NoSuchBucketPolicy, as AWS does for a bucket without a policy.
- A retried CompleteMultipartUpload of an upload that already completed
  answers with the same success while that version is still the object.
"""

import os
import subprocess

import boto3
import pytest
import requests
from botocore.config import Config

import helpers as H
from conftest import client_fixture, server_fixture, tenant_fixture
from tools_helpers import MiB, multipart_etag

BUCKET = "answers"
SIGV4_ONLY = ("The authorization mechanism you have provided is not supported. "
              "Please use AWS4-HMAC-SHA256.")


srv = server_fixture(scope="module", buckets=[BUCKET], objects={(BUCKET, "obj"): b"content"})
s3 = client_fixture("srv")
tenant_module = tenant_fixture("srv", scope="module")


def bucket_names(s3):
    return [b["Name"] for b in s3.list_buckets()["Buckets"]]


def log_lines(server, request_id, timeout=3.0):
    H.assert_logged(server, request_id, timeout)
    return [ln for ln in server.stderr_text().splitlines() if f"req={request_id}" in ln]


def assert_not_implemented(server, resp, *words):
    """501 NotImplemented in S3 XML, whose message names what is missing,
    logged at INFO (a client's request for a missing feature is no server
    error)."""
    err = H.assert_s3_error(resp, 501, "NotImplemented", server)
    for w in words:
        assert w in err["Message"], err
    lines = log_lines(server, err["RequestId"])
    assert lines and not any(" ERROR " in ln for ln in lines), lines
    return err


# -- Signature Version 2 -----------------------------------------------------------------

def sigv2_client(server):
    """botocore's Signature Version 2 signer, which aws-cli v1's
    `aws s3 presign` uses unless configured otherwise."""
    return boto3.session.Session(aws_access_key_id=server.access_key,
                                 aws_secret_access_key=server.secret_key,
                                 region_name="us-east-1").client(
        "s3", endpoint_url=server.endpoint,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}))


def test_sigv2_presigned_url(srv, s3):
    url = sigv2_client(srv).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "obj"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "X-Amz-Signature" not in url, url
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 400, resp.text
    err = H.parse_error(resp.content)
    assert err["Code"] == "InvalidRequest" and err["Message"] == SIGV4_ONLY, resp.text
    assert err["RequestId"] == resp.headers["x-amz-request-id"]
    assert b"content" not in resp.content


def test_sigv2_presigned_put_changes_nothing(srv, s3):
    url = sigv2_client(srv).generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "obj"}, ExpiresIn=300)
    resp = requests.put(url, data=b"overwritten", timeout=30)
    assert resp.status_code == 400 and H.parse_error(resp.content)["Message"] == SIGV4_ONLY
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


def test_sigv2_header(srv):
    r = H.send(srv, "GET", f"/{BUCKET}/obj",
               headers={"Authorization": f"AWS {srv.access_key}:c2lnbmF0dXJlIQ==",
                        "Date": "Mon, 07 Dec 2026 10:00:00 GMT"})
    err = H.assert_s3_error(r, 400, "InvalidRequest", srv)
    assert err["Message"] == SIGV4_ONLY


# -- the region in AuthorizationHeaderMalformed -------------------------------------------

def test_wrong_region_names_the_right_one(srv):
    r = H.raw(srv, "GET", "/" + BUCKET, region="eu-west-1")
    err = H.assert_s3_error(r, 400, "AuthorizationHeaderMalformed", srv)
    assert err["Region"] == "us-east-1"
    assert "'eu-west-1' is wrong; expecting 'us-east-1'" in err["Message"]


def test_wrong_region_presigned_names_the_right_one(srv):
    c = boto3.session.Session(aws_access_key_id=srv.access_key,
                              aws_secret_access_key=srv.secret_key,
                              region_name="ap-northeast-1").client(
        "s3", endpoint_url=srv.endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    url = c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "obj"},
                                   ExpiresIn=300)
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 400, resp.text
    err = H.parse_error(resp.content)
    assert err["Code"] == "AuthorizationQueryParametersError", resp.text
    assert err["Region"] == "us-east-1", resp.text


def s3cmd_readme_config(server, tmp_path):
    """The s3cfg the README used to give: no bucket_location, so s3cmd signs
    for its default location "US" until the server names the region."""
    conf = tmp_path / "s3cfg"
    conf.write_text(
        "[default]\n"
        f"access_key = {server.access_key}\n"
        f"secret_key = {server.secret_key}\n"
        f"host_base = {server.host}:{server.port}\n"
        f"host_bucket = {server.host}:{server.port}\n"
        "use_https = False\n"
        "signature_v2 = False\n")
    home = tmp_path / "s3cmd-home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}

    def s3cmd(*args):
        r = subprocess.run(["s3cmd", "-c", str(conf), *map(str, args)], env=env,
                           capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"s3cmd {args} failed:\n{r.stdout}\n{r.stderr}"
        return r
    return s3cmd


def test_s3cmd_with_the_readme_config(srv, s3, tmp_path):
    if not os.path.exists("/usr/bin/s3cmd"):
        pytest.skip("s3cmd is not installed")
    s3cmd = s3cmd_readme_config(srv, tmp_path)
    s3cmd("mb", "s3://answers-s3cmd")
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from s3cmd")
    s3cmd("put", src, "s3://answers-s3cmd/hello.txt")
    assert "s3://answers-s3cmd/hello.txt" in s3cmd("ls", "s3://answers-s3cmd").stdout
    assert "s3://answers-s3cmd" in s3cmd("ls").stdout
    out = tmp_path / "back.txt"
    s3cmd("get", "s3://answers-s3cmd/hello.txt", out)
    assert out.read_bytes() == b"hello from s3cmd"
    s3cmd("del", "s3://answers-s3cmd/hello.txt")
    s3cmd("rb", "s3://answers-s3cmd")
    assert "answers-s3cmd" not in bucket_names(s3)


# -- CreateBucket asking for what kura does not build -----------------------------------

def test_create_bucket_object_lock_header_is_checked(srv, s3):
    # Object Lock itself is implemented (test_object_lock.py); a value other
    # than true or false is refused and creates nothing.
    s3.create_bucket(Bucket="answers-noworm", ObjectLockEnabledForBucket=False)
    assert "answers-noworm" in bucket_names(s3)
    r = H.raw(srv, "PUT", "/answers-worm3", headers={"x-amz-bucket-object-lock-enabled": "maybe"})
    H.assert_s3_error(r, 400, "InvalidArgument")
    assert "answers-worm3" not in bucket_names(s3)


@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "authenticated-read"])
def test_create_bucket_with_public_acl_is_denied(srv, s3, acl):
    name = f"answers-acl-{acl}"
    H.expect_error("AccessDenied", 403, s3.create_bucket, Bucket=name, ACL=acl)
    assert name not in bucket_names(s3)


def test_create_bucket_private_acl_and_grants(srv, s3):
    s3.create_bucket(Bucket="answers-private", ACL="private")
    assert "answers-private" in bucket_names(s3)
    r = H.raw(srv, "PUT", "/answers-grant",
              headers={"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'})
    assert_not_implemented(srv, r, "x-amz-grant-read")
    assert "answers-grant" not in bucket_names(s3)


def test_create_bucket_object_ownership(srv, s3):
    s3.create_bucket(Bucket="answers-enforced", ObjectOwnership="BucketOwnerEnforced")
    assert "answers-enforced" in bucket_names(s3)
    for mode in ("ObjectWriter", "BucketOwnerPreferred"):
        r = H.raw(srv, "PUT", "/answers-owner", headers={"x-amz-object-ownership": mode})
        assert_not_implemented(srv, r, "x-amz-object-ownership")
    assert "answers-owner" not in bucket_names(s3)


@pytest.mark.parametrize("inner,word", [
    ("<Bucket><Type>Directory</Type><DataRedundancy>SingleAvailabilityZone</DataRedundancy>"
     "</Bucket>", "Bucket"),
    ("<Location><Type>AvailabilityZone</Type><Name>use1-az4</Name></Location>", "Location"),
    ("<Tags><Tag><Key>team</Key><Value>blue</Value></Tag></Tags>", "Tags"),
])
def test_create_bucket_configuration_kura_does_not_build(srv, s3, inner, word):
    body = (f'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{inner}</CreateBucketConfiguration>").encode()
    r = H.raw(srv, "PUT", "/answers-config", body=body)
    assert_not_implemented(srv, r, word)
    assert "answers-config" not in bucket_names(s3)


# -- versioning and policies ---------------------------------------------------------------

def test_mfa_delete_is_not_implemented(srv, s3):
    s3.create_bucket(Bucket="answers-mfa")
    r = H.raw(srv, "PUT", "/answers-mfa", query="versioning",
              body=b"<VersioningConfiguration><Status>Enabled</Status>"
                   b"<MfaDelete>Enabled</MfaDelete></VersioningConfiguration>")
    assert_not_implemented(srv, r, "MFA Delete")
    assert "Status" not in s3.get_bucket_versioning(Bucket="answers-mfa")
    s3.delete_bucket(Bucket="answers-mfa")


def test_get_bucket_policy_without_policy(srv, s3, tenant_module):
    resp = H.expect_error("NoSuchBucketPolicy", 404, s3.get_bucket_policy, Bucket=BUCKET)
    assert resp["Error"]["Message"] == "The bucket policy does not exist"
    assert resp["Error"]["BucketName"] == BUCKET
    H.expect_error("NoSuchBucket", 404, s3.get_bucket_policy, Bucket="answers-no-such")
    H.expect_error("AccessDenied", 403, tenant_module.get_bucket_policy, Bucket=BUCKET)
    # Nothing to delete is no failure; setting one is not implemented.
    s3.delete_bucket_policy(Bucket=BUCKET)
    H.expect_error("AccessDenied", 403, tenant_module.delete_bucket_policy, Bucket=BUCKET)
    resp = H.expect_error("NotImplemented", 501, s3.put_bucket_policy, Bucket=BUCKET,
                          Policy='{"Version":"2012-10-17","Statement":[]}')
    assert "PutBucketPolicy" in resp["Error"]["Message"]
    H.expect_error("NoSuchBucketPolicy", 404, s3.get_bucket_policy, Bucket=BUCKET)


@pytest.mark.parametrize("method,query,op", [
    ("GET", "cors", "GetBucketCors"),
    ("PUT", "replication", "PutBucketReplication"),
    ("DELETE", "website", "DeleteBucketWebsite"),
    ("GET", "replication", "GetBucketReplication"),
    ("GET", "policyStatus", "GetBucketPolicyStatus"),
    ("PUT", "tagging", "PutBucketTagging"),
    ("GET", "session", "CreateSession"),
])
def test_unimplemented_bucket_operations_are_named(srv, method, query, op):
    r = H.raw(srv, method, "/" + BUCKET, query=query, body=b"")
    assert_not_implemented(srv, r, op)


@pytest.mark.parametrize("method,query,op", [
    ("POST", "restore", "RestoreObject"),
    ("PUT", "attributes", "Object attributes other than GetObjectAttributes"),
    ("PUT", "renameObject", "RenameObject"),
    ("GET", "torrent", "GetObjectTorrent"),
])
def test_unimplemented_object_operations_are_named(srv, s3, method, query, op):
    r = H.raw(srv, method, f"/{BUCKET}/obj", query=query, body=b"",
              headers={"x-amz-rename-source": f"/{BUCKET}/other"} if op == "RenameObject"
              else None)
    assert_not_implemented(srv, r, op)
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


def test_browser_post_upload_is_not_implemented(srv, s3):
    r = H.raw(srv, "POST", "/" + BUCKET, headers={"Content-Type": "multipart/form-data; b=x"})
    assert_not_implemented(srv, r, "PostObject")


# -- writes asking for what kura does not build -------------------------------------------

@pytest.mark.parametrize("cls", ["GLACIER", "DEEP_ARCHIVE", "STANDARD_IA", "ONEZONE_IA",
                                 "INTELLIGENT_TIERING", "REDUCED_REDUNDANCY", "GLACIER_IR",
                                 "EXPRESS_ONEZONE"])
def test_storage_class_other_than_standard(srv, s3, cls):
    H.expect_error("NotImplemented", 501, s3.put_object, Bucket=BUCKET, Key="obj",
                   Body=b"changed", StorageClass=cls)
    r = H.raw(srv, "PUT", f"/{BUCKET}/obj", body=b"changed",
              headers={"x-amz-storage-class": cls})
    assert_not_implemented(srv, r, cls)
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


def test_unknown_storage_class_is_invalid(srv, s3):
    r = H.raw(srv, "PUT", f"/{BUCKET}/obj", body=b"changed",
              headers={"x-amz-storage-class": "FAST_AND_CHEAP"})
    H.assert_s3_error(r, 400, "InvalidStorageClass")
    s3.put_object(Bucket=BUCKET, Key="standard", Body=b"s", StorageClass="STANDARD")
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


def test_append_offset_is_not_implemented(srv, s3):
    """x-amz-write-offset-bytes asks to append; writing the body as a new
    object instead would destroy what is there."""
    r = H.raw(srv, "PUT", f"/{BUCKET}/obj", body=b" appended",
              headers={"x-amz-write-offset-bytes": "7"})
    assert_not_implemented(srv, r, "x-amz-write-offset-bytes")
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


def test_expected_bucket_owner_is_checked(srv, s3):
    owner = s3.list_buckets()["Owner"]["ID"]
    assert s3.get_object(Bucket=BUCKET, Key="obj", ExpectedBucketOwner=owner)["Body"].read() \
        == b"content"
    H.expect_error("AccessDenied", 403, s3.get_object, Bucket=BUCKET, Key="obj",
                   ExpectedBucketOwner="999999999999")
    H.expect_error("AccessDenied", 403, s3.put_object, Bucket=BUCKET, Key="obj",
                   Body=b"changed", ExpectedBucketOwner="999999999999")
    assert s3.get_object(Bucket=BUCKET, Key="obj")["Body"].read() == b"content"


# -- retried CompleteMultipartUpload -------------------------------------------------------

def upload_two_parts(s3, key):
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bodies = [os.urandom(5 * MiB), os.urandom(1000)]
    parts = [{"PartNumber": n + 1,
              "ETag": s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n + 1,
                                     Body=b)["ETag"]} for n, b in enumerate(bodies)]
    return uid, parts, bodies


def test_retried_complete_answers_the_same(srv, s3):
    key = "mp/retried ü"
    uid, parts, bodies = upload_two_parts(s3, key)
    first = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    assert first["ETag"] == f'"{multipart_etag(bodies)}"'
    again = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    for field in ("ETag", "Location", "Bucket", "Key", "ServerSideEncryption"):
        assert again.get(field) == first.get(field), field
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"".join(bodies)
    # The upload itself is gone: no parts to list, nothing to abort.
    H.expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=BUCKET, Key=key, UploadId=uid)
    # A retry naming other parts than those completed is no retry.
    other = [parts[0]]
    H.expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                   UploadId=uid, MultipartUpload={"Parts": other})
    # Another key, same upload id: no.
    H.expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=BUCKET,
                   Key="mp/elsewhere", UploadId=uid, MultipartUpload={"Parts": parts})


def test_retried_complete_after_overwrite_is_no_such_upload(srv, s3):
    key = "mp/overwritten"
    uid, parts, _ = upload_two_parts(s3, key)
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"newer")
    H.expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                   UploadId=uid, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"newer"
    s3.delete_object(Bucket=BUCKET, Key=key)
    H.expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                   UploadId=uid, MultipartUpload={"Parts": parts})


def test_retried_complete_of_aborted_upload_is_no_such_upload(srv, s3):
    key = "mp/aborted"
    uid, parts, _ = upload_two_parts(s3, key)
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    H.expect_error("NoSuchUpload", 404, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                   UploadId=uid, MultipartUpload={"Parts": parts})
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=key)


def test_retried_complete_other_tenant_is_denied(srv, s3, tenant_module):
    key = "mp/tenant"
    uid, parts, _ = upload_two_parts(s3, key)
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    H.expect_error("AccessDenied", 403, tenant_module.complete_multipart_upload, Bucket=BUCKET,
                   Key=key, UploadId=uid, MultipartUpload={"Parts": parts})
