"""Object tagging (Put/Get/DeleteObjectTagging, x-amz-tagging on PUT,
x-amz-tagging-count, S3's tag limits) and ACLs (owner FULL_CONTROL only;
private accepted; anything public or shared refused)."""

import pytest

from tools_helpers import expect_error, raw_request

BUCKET = "tagacl"


@pytest.fixture(scope="module")
def s3t(s3_module):
    s3_module.create_bucket(Bucket=BUCKET)
    return s3_module


def tagset(s3, key, bucket=BUCKET):
    return sorted((t["Key"], t["Value"])
                  for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"])


def tag_count(s3, key, bucket=BUCKET):
    h = s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
    return h.get("x-amz-tagging-count")


def put_tags(s3, key, pairs, bucket=BUCKET):
    return s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={
        "TagSet": [{"Key": k, "Value": v} for k, v in pairs]})


# -- tagging ------------------------------------------------------------------------------

def test_put_get_delete_object_tagging(s3t):
    s3t.put_object(Bucket=BUCKET, Key="tagged", Body=b"data")
    assert tagset(s3t, "tagged") == []
    assert tag_count(s3t, "tagged") is None
    pairs = [("project", "kura"), ("env", "test env"), ("empty", ""), ("ünï", "cödé")]
    r = put_tags(s3t, "tagged", pairs)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tagset(s3t, "tagged") == sorted(pairs)
    assert tag_count(s3t, "tagged") == "4"
    g = s3t.get_object(Bucket=BUCKET, Key="tagged")
    assert g["TagCount"] == 4 and g["Body"].read() == b"data"
    # Put replaces the whole set.
    put_tags(s3t, "tagged", [("only", "one")])
    assert tagset(s3t, "tagged") == [("only", "one")]
    r = s3t.delete_object_tagging(Bucket=BUCKET, Key="tagged")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tagset(s3t, "tagged") == []
    assert tag_count(s3t, "tagged") is None
    # Tags never touch the data.
    assert s3t.get_object(Bucket=BUCKET, Key="tagged")["Body"].read() == b"data"


def test_tagging_header_on_put(s3t):
    s3t.put_object(Bucket=BUCKET, Key="hdr", Body=b"x",
                   Tagging="a=1&b=two%20words&c%26d=e%3Df&empty=")
    assert tagset(s3t, "hdr") == [("a", "1"), ("b", "two words"), ("c&d", "e=f"),
                                  ("empty", "")]
    assert s3t.get_object(Bucket=BUCKET, Key="hdr")["TagCount"] == 4
    # Overwriting the object without tags drops them.
    s3t.put_object(Bucket=BUCKET, Key="hdr", Body=b"y")
    assert tagset(s3t, "hdr") == []
    assert tag_count(s3t, "hdr") is None


def test_tagging_missing_object(s3t):
    expect_error(s3t.get_object_tagging, "NoSuchKey", 404, Bucket=BUCKET, Key="nope")
    expect_error(put_tags, "NoSuchKey", 404, s3t, "nope", [("a", "b")])


def test_tag_limits_accepted_at_the_edge(s3t):
    s3t.put_object(Bucket=BUCKET, Key="edge", Body=b"e")
    ten = [(f"k{i}", f"v{i}") for i in range(10)]
    put_tags(s3t, "edge", ten)
    assert tagset(s3t, "edge") == sorted(ten)
    # 128-character keys and 256-character values, counted in characters.
    edge = [("K" * 128, "V" * 256), ("é" * 128, "ü" * 256)]
    put_tags(s3t, "edge", edge)
    assert tagset(s3t, "edge") == sorted(edge)
    s3t.put_object(Bucket=BUCKET, Key="edge-hdr", Body=b"e",
                   Tagging="&".join(f"{k}={v}" for k, v in ten))
    assert len(tagset(s3t, "edge-hdr")) == 10


@pytest.mark.parametrize("pairs, code", [
    ([(f"k{i}", "v") for i in range(11)], "BadRequest"),
    ([("dup", "1"), ("dup", "2")], "InvalidTag"),
    ([("K" * 129, "v")], "InvalidTag"),
    ([("k", "V" * 257)], "InvalidTag"),
    ([("é" * 129, "v")], "InvalidTag"),
    ([("k", "日" * 257)], "InvalidTag"),
])
def test_tag_limits_put_object_tagging(s3t, pairs, code):
    s3t.put_object(Bucket=BUCKET, Key="limits", Body=b"l")
    put_tags(s3t, "limits", [("before", "1")])
    expect_error(put_tags, code, 400, s3t, "limits", pairs)
    # A refused set changes nothing.
    assert tagset(s3t, "limits") == [("before", "1")]


@pytest.mark.parametrize("header, code", [
    ("&".join(f"k{i}=v" for i in range(11)), "BadRequest"),
    ("dup=1&dup=2", "InvalidTag"),
    ("K" * 129 + "=v", "InvalidTag"),
    ("k=" + "V" * 257, "InvalidTag"),
])
def test_tag_limits_tagging_header(s3t, header, code):
    expect_error(s3t.put_object, code, 400, Bucket=BUCKET, Key="limits-hdr", Body=b"l",
                 Tagging=header)
    expect_error(s3t.head_object, "404", 404, Bucket=BUCKET, Key="limits-hdr")


def test_empty_tag_key_invalid(kura_server_module, s3t):
    # boto3 refuses an empty key itself, so send the document raw.
    s3t.put_object(Bucket=BUCKET, Key="empty-key", Body=b"m")
    body = b"<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>"
    r = raw_request(kura_server_module, "PUT", f"/{BUCKET}/empty-key", query="tagging",
                    body=body)
    assert r.status == 400, r
    assert r.error_code() == "InvalidTag"
    assert tagset(s3t, "empty-key") == []


def test_malformed_tagging_document(kura_server_module, s3t):
    s3t.put_object(Bucket=BUCKET, Key="malformed", Body=b"m")
    for body in (b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
                 b"<Tagging></Tagging>", b"<Other/>", b"garbage"):
        r = raw_request(kura_server_module, "PUT", f"/{BUCKET}/malformed",
                        query="tagging", body=body)
        assert r.status == 400, r
        assert r.error_code() == "MalformedXML"


def test_bucket_tagging_not_implemented(s3t):
    expect_error(s3t.get_bucket_tagging, "NotImplemented", 501, Bucket=BUCKET)


# -- ACLs -------------------------------------------------------------------------------

def _owner_only(acl):
    owner = acl["Owner"]["ID"]
    assert owner
    grants = acl["Grants"]
    assert len(grants) == 1
    assert grants[0]["Permission"] == "FULL_CONTROL"
    assert grants[0]["Grantee"]["Type"] == "CanonicalUser"
    assert grants[0]["Grantee"]["ID"] == owner
    return owner


def test_get_acls_owner_full_control(s3t):
    s3t.put_object(Bucket=BUCKET, Key="acl-obj", Body=b"a")
    bucket_owner = _owner_only(s3t.get_bucket_acl(Bucket=BUCKET))
    object_owner = _owner_only(s3t.get_object_acl(Bucket=BUCKET, Key="acl-obj"))
    assert bucket_owner == object_owner
    expect_error(s3t.get_object_acl, "NoSuchKey", 404, Bucket=BUCKET, Key="no-acl-obj")
    expect_error(s3t.get_bucket_acl, "NoSuchBucket", 404, Bucket="no-such-acl-bucket")


def test_acls_differ_per_tenant(s3t, tenant_module):
    tenant_module.create_bucket(Bucket="tenant-acl")
    a = _owner_only(s3t.get_bucket_acl(Bucket=BUCKET))
    b = _owner_only(tenant_module.get_bucket_acl(Bucket="tenant-acl"))
    assert a != b


def test_put_private_acl_succeeds(s3t):
    s3t.put_object(Bucket=BUCKET, Key="acl-private", Body=b"p")
    for fn, kw in ((s3t.put_bucket_acl, {"Bucket": BUCKET}),
                   (s3t.put_object_acl, {"Bucket": BUCKET, "Key": "acl-private"})):
        r = fn(ACL="private", **kw)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # A policy granting only the owner FULL_CONTROL is private too.
    acl = s3t.get_object_acl(Bucket=BUCKET, Key="acl-private")
    policy = {"Owner": acl["Owner"], "Grants": acl["Grants"]}
    s3t.put_object_acl(Bucket=BUCKET, Key="acl-private", AccessControlPolicy=policy)
    s3t.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=policy)
    _owner_only(s3t.get_object_acl(Bucket=BUCKET, Key="acl-private"))
    # PUT with the private canned ACL works.
    s3t.put_object(Bucket=BUCKET, Key="acl-private-put", Body=b"p", ACL="private")


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.mark.parametrize("kw", [
    {"ACL": "public-read"},
    {"ACL": "public-read-write"},
    {"ACL": "authenticated-read"},
    {"GrantRead": f'uri="{ALL_USERS}"'},
    {"GrantFullControl": 'id="someone-else"'},
])
def test_public_or_shared_acl_denied(s3t, kw):
    s3t.put_object(Bucket=BUCKET, Key="acl-deny", Body=b"d")
    expect_error(s3t.put_bucket_acl, "AccessDenied", 403, Bucket=BUCKET, **kw)
    expect_error(s3t.put_object_acl, "AccessDenied", 403, Bucket=BUCKET, Key="acl-deny", **kw)
    _owner_only(s3t.get_bucket_acl(Bucket=BUCKET))
    _owner_only(s3t.get_object_acl(Bucket=BUCKET, Key="acl-deny"))


def test_public_grant_in_policy_denied(s3t):
    s3t.put_object(Bucket=BUCKET, Key="acl-policy", Body=b"d")
    acl = s3t.get_object_acl(Bucket=BUCKET, Key="acl-policy")
    policy = {"Owner": acl["Owner"], "Grants": acl["Grants"] + [
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]}
    expect_error(s3t.put_object_acl, "AccessDenied", 403, Bucket=BUCKET, Key="acl-policy",
                 AccessControlPolicy=policy)
    expect_error(s3t.put_bucket_acl, "AccessDenied", 403, Bucket=BUCKET,
                 AccessControlPolicy=policy)
    other = {"Owner": acl["Owner"], "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "999999"}, "Permission": "READ"}]}
    expect_error(s3t.put_object_acl, "AccessDenied", 403, Bucket=BUCKET, Key="acl-policy",
                 AccessControlPolicy=other)


def test_put_object_public_acl_denied(s3t):
    expect_error(s3t.put_object, "AccessDenied", 403, Bucket=BUCKET, Key="public-put",
                 Body=b"x", ACL="public-read")
    expect_error(s3t.head_object, "404", 404, Bucket=BUCKET, Key="public-put")
    expect_error(s3t.create_multipart_upload, "AccessDenied", 403, Bucket=BUCKET,
                 Key="public-mp", ACL="public-read")
