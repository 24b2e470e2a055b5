/*
 * s3_int.h — what the files of src/s3 share: the per-request S3 context,
 * the error table, the XML writer and reader, and each operation's entry
 * points.  Not a public contract; nothing outside src/s3 includes it.
 *
 * Lifecycle of a request (driven by request.c through the http handler):
 *   begin:  parse addressing and query, authenticate, route to an operation,
 *           run the operation's start (which may answer at once)
 *   body:   raw bytes -> payload (aws-chunked decoding, SHA-256/MD5
 *           verification) -> operation's body sink
 *   end:    payload checks, then the operation's finish, which responds
 *   done:   the operation's cleanup (aborts anything not committed)
 */
#ifndef KURA_S3_INT_H
#define KURA_S3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/buf.h"
#include "kura/checksum.h"
#include "kura/http.h"
#include "kura/lifecycle.h"
#include "kura/meta.h"
#include "kura/seal.h"
#include "kura/service.h"
#include "kura/sigv4.h"

/* ---- errors ---- */

#define S3_ERROR_TABLE(X)                                                          \
	X(AccessDenied, "AccessDenied", 403, "Access Denied")                      \
	X(AuthorizationHeaderMalformed, "AuthorizationHeaderMalformed", 400,       \
	  "The authorization header is malformed.")                                \
	X(AuthorizationQueryParametersError,                                       \
	  "AuthorizationQueryParametersError", 400,                                \
	  "The query parameters that provide authentication are malformed.")       \
	X(BadDigest, "BadDigest", 400,                                             \
	  "The Content-MD5 you specified did not match what we received.")         \
	X(BadRequest, "BadRequest", 400, "Bad Request")                            \
	X(BucketAlreadyExists, "BucketAlreadyExists", 409,                         \
	  "The requested bucket name is not available. The bucket namespace "      \
	  "is shared by all users of the system. Please select a different "       \
	  "name and try again.")                                                   \
	X(BucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou", 409,                 \
	  "Your previous request to create the named bucket succeeded and "        \
	  "you already own it.")                                                   \
	X(BucketNotEmpty, "BucketNotEmpty", 409,                                   \
	  "The bucket you tried to delete is not empty")                           \
	X(ConditionalRequestConflict, "ConditionalRequestConflict", 409,           \
	  "The conditional request cannot succeed due to a conflicting "           \
	  "operation against this resource.")                                      \
	X(EntityTooLarge, "EntityTooLarge", 400,                                   \
	  "Your proposed upload exceeds the maximum allowed object size.")         \
	X(EntityTooSmall, "EntityTooSmall", 400,                                   \
	  "Your proposed upload is smaller than the minimum allowed object size.") \
	X(IllegalVersioningConfiguration,                                          \
	  "IllegalVersioningConfigurationException", 400,                          \
	  "The Versioning element must be specified")                              \
	X(IncompleteBody, "IncompleteBody", 400,                                   \
	  "You did not provide the number of bytes specified by the "              \
	  "Content-Length HTTP header.")                                           \
	X(InternalError, "InternalError", 500,                                     \
	  "We encountered an internal error. Please try again.")                   \
	X(InvalidAccessKeyId, "InvalidAccessKeyId", 403,                           \
	  "The AWS access key Id you provided does not exist in our records.")     \
	X(InvalidArgument, "InvalidArgument", 400, "Invalid Argument")             \
	X(InvalidBucketName, "InvalidBucketName", 400,                             \
	  "The specified bucket is not valid.")                                    \
	X(InvalidDigest, "InvalidDigest", 400,                                     \
	  "The Content-MD5 you specified is not valid.")                           \
	X(InvalidLocationConstraint, "InvalidLocationConstraint", 400,             \
	  "The specified location-constraint is not valid")                        \
	X(InvalidPart, "InvalidPart", 400,                                         \
	  "One or more of the specified parts could not be found.")                \
	X(InvalidPartOrder, "InvalidPartOrder", 400,                               \
	  "The list of parts was not in ascending order. The parts list "          \
	  "must be specified in order by part number.")                            \
	X(InvalidPartNumber, "InvalidPartNumber", 416,                             \
	  "The requested partnumber is not satisfiable.")                          \
	X(InvalidRange, "InvalidRange", 416,                                       \
	  "The requested range is not satisfiable")                                \
	X(InvalidRequest, "InvalidRequest", 400, "Invalid Request")                \
	X(InvalidStorageClass, "InvalidStorageClass", 400,                         \
	  "The storage class you specified is not valid")                          \
	X(InvalidTag, "InvalidTag", 400,                                           \
	  "The tag provided was not a valid tag.")                                 \
	X(InvalidBucketState, "InvalidBucketState", 409,                           \
	  "The request is not valid with the current state of the bucket.")        \
	X(InvalidEncryptionAlgorithmError, "InvalidEncryptionAlgorithmError",      \
	  400, "The encryption request you specified is not valid.")               \
	X(InvalidURI, "InvalidURI", 400, "Couldn't parse the specified URI.")      \
	X(KMSDisabled, "KMS.DisabledException", 400,                               \
	  "The key protecting this data is disabled.")                             \
	X(KMSInvalidState, "KMS.KMSInvalidStateException", 400,                    \
	  "The key protecting this data was destroyed.")                           \
	X(KMSNotFound, "KMS.NotFoundException", 400,                               \
	  "The key you specified does not exist or is not yours.")                 \
	X(KeyTooLongError, "KeyTooLongError", 400, "Your key is too long")         \
	X(MalformedXML, "MalformedXML", 400,                                       \
	  "The XML you provided was not well-formed or did not validate "          \
	  "against our published schema")                                          \
	X(MaxMessageLengthExceeded, "MaxMessageLengthExceeded", 400,               \
	  "Your request was too big.")                                             \
	X(MetadataTooLarge, "MetadataTooLarge", 400,                               \
	  "Your metadata headers exceed the maximum allowed metadata size.")       \
	X(MethodNotAllowed, "MethodNotAllowed", 405,                               \
	  "The specified method is not allowed against this resource.")            \
	X(MissingContentLength, "MissingContentLength", 411,                       \
	  "You must provide the Content-Length HTTP header.")                      \
	X(NoSuchBucket, "NoSuchBucket", 404,                                       \
	  "The specified bucket does not exist")                                   \
	X(NoSuchBucketPolicy, "NoSuchBucketPolicy", 404,                           \
	  "The bucket policy does not exist")                                      \
	X(NoSuchKey, "NoSuchKey", 404, "The specified key does not exist.")        \
	X(NoSuchLifecycleConfiguration, "NoSuchLifecycleConfiguration", 404,       \
	  "The lifecycle configuration does not exist")                            \
	X(NoSuchTagSet, "NoSuchTagSet", 404,                                       \
	  "There is no tag set associated with the object.")                       \
	X(NoSuchUpload, "NoSuchUpload", 404,                                       \
	  "The specified multipart upload does not exist. The upload ID might "    \
	  "be invalid, or the multipart upload might have been aborted or "        \
	  "completed.")                                                            \
	X(NoSuchVersion, "NoSuchVersion", 404,                                     \
	  "The specified version does not exist.")                                 \
	X(NotImplemented, "NotImplemented", 501,                                   \
	  "A header you provided implies functionality that is not implemented.")  \
	X(NoSuchObjectLockConfiguration, "NoSuchObjectLockConfiguration", 404,     \
	  "The specified object does not have a ObjectLock configuration")         \
	X(ObjectLockConfigurationNotFoundError,                                    \
	  "ObjectLockConfigurationNotFoundError", 404,                             \
	  "Object Lock configuration does not exist for this bucket")              \
	X(PreconditionFailed, "PreconditionFailed", 412,                           \
	  "At least one of the pre-conditions you specified did not hold")         \
	X(RequestHeaderSectionTooLarge, "RequestHeaderSectionTooLarge", 400,       \
	  "Your request header section exceeds the maximum allowed size.")         \
	X(RequestTimeTooSkewed, "RequestTimeTooSkewed", 403,                       \
	  "The difference between the request time and the current time is "       \
	  "too large.")                                                            \
	X(ServiceUnavailable, "ServiceUnavailable", 503,                           \
	  "Please reduce your request rate.")                                      \
	X(SignatureDoesNotMatch, "SignatureDoesNotMatch", 403,                     \
	  "The request signature we calculated does not match the signature "      \
	  "you provided. Check your key and signing method.")                      \
	X(XAmzContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400,             \
	  "The provided 'x-amz-content-sha256' header does not match what "        \
	  "was computed.")

enum s3_error {
#define S3_ERR_ENUM_(name, code, status, msg) S3_##name,
	S3_ERROR_TABLE(S3_ERR_ENUM_)
#undef S3_ERR_ENUM_
	S3_ERROR_COUNT_
};

/* ---- operations ---- */

#define S3_OP_TABLE(X)                     \
	X(ListBuckets)                     \
	X(CreateBucket)                    \
	X(HeadBucket)                      \
	X(DeleteBucket)                    \
	X(GetBucketLocation)               \
	X(GetBucketVersioning)             \
	X(PutBucketVersioning)             \
	X(ListObjectVersions)              \
	X(PutObjectLockConfiguration)      \
	X(GetObjectLockConfiguration)      \
	X(PutObjectRetention)              \
	X(GetObjectRetention)              \
	X(PutObjectLegalHold)              \
	X(GetObjectLegalHold)              \
	X(ListObjects)                     \
	X(ListObjectsV2)                   \
	X(PutObject)                       \
	X(GetObject)                       \
	X(HeadObject)                      \
	X(DeleteObject)                    \
	X(CreateMultipartUpload)           \
	X(UploadPart)                      \
	X(CompleteMultipartUpload)         \
	X(AbortMultipartUpload)            \
	X(ListParts)                       \
	X(ListMultipartUploads)            \
	X(CopyObject)                      \
	X(UploadPartCopy)                  \
	X(DeleteObjects)                   \
	X(GetObjectAttributes)             \
	X(GetObjectTagging)                \
	X(PutObjectTagging)                \
	X(DeleteObjectTagging)             \
	X(GetBucketAcl)                    \
	X(PutBucketAcl)                    \
	X(GetObjectAcl)                    \
	X(PutObjectAcl)                    \
	X(GetBucketEncryption)             \
	X(PutBucketEncryption)             \
	X(DeleteBucketEncryption)          \
	X(GetBucketPolicy)                 \
	X(DeleteBucketPolicy)              \
	X(GetBucketLifecycleConfiguration) \
	X(PutBucketLifecycleConfiguration) \
	X(DeleteBucketLifecycle)

enum s3_op {
	S3_OP_NONE = 0,
#define S3_OP_ENUM_(name) S3_OP_##name,
	S3_OP_TABLE(S3_OP_ENUM_)
#undef S3_OP_ENUM_
	S3_OP_COUNT_
};

/* Which key protects an object, as a request asked for it. */
struct s3_sse {
	enum kura_sse mode;
	uint64_t kms_key_id;		  /* KURA_SSE_KMS */
	struct kura_secret *customer_key; /* KURA_SSE_C, for this request */
	char customer_key_md5[32];	  /* base64, as the client sent it */
};

/* A decoded query parameter. */
struct s3_param {
	const char *name;
	const char *value; /* "" when the parameter had no '=' */
	size_t value_len;
};

enum s3_payload {
	S3_PAYLOAD_HASHED,   /* x-amz-content-sha256 is a hex digest */
	S3_PAYLOAD_UNSIGNED, /* UNSIGNED-PAYLOAD */
	S3_PAYLOAD_CHUNKED,  /* one of the STREAMING-* forms */
};

struct s3_req {
	struct kura_service *svc;
	struct kura_http_req *http;
	struct kura_pool *pool;
	enum s3_op op;
	bool head; /* HEAD request: error bodies omitted */

	/* Addressing (decoded). */
	const char *bucket_name; /* NULL when the request has none */
	const char *key;	 /* NULL when none; may hold any byte */
	size_t key_len;
	struct s3_param *params;
	size_t nparams;

	/* Authentication. */
	struct kura_sigv4 sig;
	uint64_t tenant_id;
	char access_key[KURA_ACCESS_KEY_ID_MAX];
	struct kura_secret *signing_key;
	char scope[128];

	/* Encryption the request asked for or the object needs (sse.c);
	 * the customer key, if any, is wiped when the request ends. */
	struct s3_sse sse;

	/* The bucket addressed, once looked up and checked for ownership. */
	struct kura_bucket bucket;
	bool have_bucket;

	/* Metadata seals made and opened by this request (seal.h). */
	struct kura_seal_ctx seal;

	/* Payload verification (set up by s3_payload_begin). */
	bool payload_started;
	enum s3_payload payload;
	uint8_t want_sha256[32];
	EVP_MD_CTX *sha256; /* for S3_PAYLOAD_HASHED */
	EVP_MD_CTX *md5;    /* when Content-MD5 is given, unless md5_by_op */
	bool md5_by_op;	    /* the operation checks Content-MD5 itself */
	bool have_content_md5;
	uint8_t content_md5[16];
	struct kura_checksum checksum;	/* x-amz-checksum-* header, if any */
	struct kura_str checksum_value; /* len 0: computed, not compared */
	/* Set by the operation before s3_payload_begin: the x-amz-checksum-*
	 * headers describe the object, not the body (Complete), and the
	 * algorithm the body must be checksummed with (an upload part of an
	 * upload that declared one: computed when the client sends none). */
	bool checksum_not_body;
	enum kura_checksum_algo checksum_want;
	/* The body's checksum, verified (header or trailer) or computed,
	 * after s3_payload_end; algo NONE for none. */
	struct kura_checksum_value sum;
	uint64_t declared_len; /* decoded length announced, if any */
	bool have_declared_len;
	uint64_t decoded_len; /* decoded bytes seen */
	uint64_t max_body;    /* decoded bytes allowed */
	struct kura_chunked *chunked;

	/* The operation's body handling (NULL: body ignored). */
	enum kura_err (*op_body)(struct s3_req *r, const uint8_t *p, size_t n,
				 struct kura_error *err);
	void (*op_finish)(struct s3_req *r);
	void (*op_cleanup)(struct s3_req *r);
	void *op_state;
	struct kura_buf xml_body; /* for operations with an XML body */

	/* Outcome, for the access log and the audit record. */
	const char *error_code;
	bool failed;
	bool answered; /* before_send ran: the answer went out */
	uint8_t version_uid[KURA_UID_LEN]; /* the object version touched */
	bool have_version;
	/* The keyed digest of the object row written (seal.h), hex; "" for
	 * none.  Set with the seal of a new row (s3_seal_new_object). */
	char row_digest[2 * KURA_ROW_DIGEST_LEN + 1];
	const char *audit_detail; /* extra audit fields (JSON), or NULL */
	/* Records that go into the audit log together with the request's
	 * own, just before it (s3_audit_add); in the pool. */
	struct kura_audit_record *audit_extra;
	size_t n_audit_extra, cap_audit_extra;
	bool audit_lost; /* one could not be kept: answer 503 */
};

/* Note the object version a request wrote, read or deleted (audit). */
static inline void s3_note_version(struct s3_req *r,
				   const uint8_t uid[KURA_UID_LEN])
{
	memcpy(r->version_uid, uid, KURA_UID_LEN);
	r->have_version = true;
}

/* Note the digest of object row o (sealed, its ETag clear) for the
 * audit record. */
void s3_note_row(struct s3_req *r, uint64_t tenant_id,
		 const struct kura_object *o);

/* Note the source of a copy in the audit record. */
void s3_audit_note_source(struct s3_req *r, const char *bucket, const char *key,
			  size_t key_len);

/* The operation's S3 name ("PutObject"), "-" for none. */
const char *s3_op_name(enum s3_op op);

/* The http layer's before_send hook: append the request's audit record;
 * replace the response with 503 when the log cannot take it (audit.c). */
void s3_audit_before_send(void *ctx, struct kura_http_req *h);
/* Queue a record to be written with the request's own, before it, in one
 * group (all or none; the answer is 503 if the group cannot be written).
 * The request's id, source, tenant, access key, and — when rec leaves them
 * NULL — type, op and bucket are filled in; strings must live as long as
 * the request (its pool, or static).  Out of memory: the request is marked
 * so that it answers 503, and KURA_ENOMEM is returned. */
enum kura_err s3_audit_add(struct s3_req *r,
			   const struct kura_audit_record *rec);

/*
 * Record an event that belongs to request r — type and op name it (e.g.
 * "integrity", "integrity.failure"), error and detail_json (a JSON object
 * text) may be NULL — with the request's id, source, tenant, access key,
 * bucket, key and version.  Before the answer is sent the event is queued
 * with the request's own record (s3_audit_add: written together, all or
 * none); once the answer has gone out (a streamed body) it is appended at
 * once and this returns when it is durable, or the log's error.
 */
enum kura_err s3_audit_event(struct s3_req *r, const char *type, const char *op,
			     const char *error, const char *detail_json,
			     struct kura_error *err);

/* From the done hook: record a request that was not answered completely
 * (aborted, cut short, or whose head never reached begin); nothing for
 * one that was. */
void s3_audit_done(struct kura_service *svc, struct kura_http_req *h,
		   bool completed);

/* Respond with an S3 error; message NULL means the table's message.  The
 * internal detail (may be NULL) goes to the log only, never to the client. */
void s3_error(struct s3_req *r, enum s3_error code, const char *message,
	      const char *detail);
/* s3_error with one more element after <Message> (AWS's <Region> of
 * AuthorizationHeaderMalformed, <HeadersNotSigned> ...); elem NULL for
 * none. */
void s3_error_elem(struct s3_req *r, enum s3_error code, const char *message,
		   const char *detail, const char *elem, const char *text);
/* s3_error with n more elements after <Message>, in order (AWS's
 * <ArgumentName> and <ArgumentValue>, <ActualPartCount> and
 * <PartNumberRequested> ...). */
struct s3_error_field {
	const char *name;
	const char *text;
};
void s3_error_fields(struct s3_req *r, enum s3_error code, const char *message,
		     const char *detail, const struct s3_error_field *fields,
		     size_t n);
/* Map a kura error from a lower layer to an S3 error and respond. */
void s3_error_from(struct s3_req *r, enum kura_err code,
		   const struct kura_error *err);
/* rc == KURA_OK: true.  Otherwise respond — if_missing for KURA_ENOENT,
 * the mapped error for anything else — and return false. */
bool s3_ok(struct s3_req *r, enum kura_err rc, const struct kura_error *err,
	   enum s3_error if_missing);
const char *s3_error_name(enum s3_error code);
unsigned s3_error_status(enum s3_error code);

/* Start a successful response with the common headers. */
enum kura_err s3_respond(struct s3_req *r, unsigned status);
/* Respond 200 with the ETag, the SSE headers (r->sse) and the checksum
 * (sum, may be NULL; a simple object's or a part's) of a stored object or
 * part. */
void s3_respond_stored(struct s3_req *r, const char *etag_hex,
		       const struct kura_checksum_value *sum);

/* ---- additional checksums shown (checksums.c) ---- */

/* Did the request ask for checksums (x-amz-checksum-mode: ENABLED)? */
bool s3_checksum_mode(struct s3_req *r);
/* x-amz-checksum-<algo> and x-amz-checksum-type for v (nothing when v has
 * no algorithm); parts: the part count shown after a composite value. */
enum kura_err s3_checksum_headers(struct s3_req *r,
				  const struct kura_checksum_value *v,
				  uint32_t parts);
/* <ChecksumXXX> (and <ChecksumType> when with_type) for v, if any. */
void s3_checksum_xml(struct kura_buf *b, const struct kura_checksum_value *v,
		     uint32_t parts, bool with_type);

/*
 * The digest of an SSE-KMS or SSE-C checksum is stored masked with a pad
 * derived from a DEK of the data (docs/FORMAT.md §10): an object's with
 * its first part's DEK, an upload part's with its own.  Masking twice
 * unmasks.  SSE-S3 checksums are stored as they are.
 */
enum s3_sum_kind {
	S3_SUM_OBJECT = 1,
	S3_SUM_PART = 2,
};
enum kura_err s3_sum_mask(const struct kura_secret *dek, enum s3_sum_kind kind,
			  const uint8_t version_uid[KURA_UID_LEN],
			  uint32_t part_no, struct kura_checksum_value *v,
			  struct kura_error *err);
/* The DEK of part p of version uid in r->bucket (customer_key: an SSE-C
 * object's, else NULL); the caller frees it. */
enum kura_err s3_part_dek(struct s3_req *r, const uint8_t uid[KURA_UID_LEN],
			  const struct kura_part *p,
			  const struct kura_secret *customer_key,
			  struct kura_secret **dek, struct kura_error *err);
/* Unmask in place the checksum of an upload part (data encrypted as sse)
 * or of an object, as read from its seal; nothing for SSE-S3 data or no
 * checksum.  Errors as the DEK's unwrapping. */
enum kura_err s3_sum_unmask_part(struct s3_req *r,
				 const uint8_t uid[KURA_UID_LEN],
				 struct kura_part *p, enum kura_sse sse,
				 const struct kura_secret *customer_key,
				 struct kura_error *err);
enum kura_err s3_sum_unmask_object(struct s3_req *r, struct kura_object *o,
				   const struct kura_secret *customer_key,
				   struct kura_error *err);
/* Respond 200 with the XML document xml; when building it failed
 * (kura_buf_error: its cap reached, out of memory) respond InternalError
 * instead.  True when the document is the answer, so that headers about it
 * may follow. */
bool s3_respond_xml(struct s3_req *r, const struct kura_buf *xml);

/* Query parameter lookup (decoded); NULL when absent. */
const struct s3_param *s3_param_get(const struct s3_req *r, const char *name);

/* Request header lookup (raw view); NULL when absent. */
const struct kura_str *s3_header(const struct s3_req *r, const char *name);

/* Look up r->bucket_name, check the tenant owns it, fill r->bucket; on
 * failure respond (NoSuchBucket / AccessDenied / InternalError) and return
 * false. */
bool s3_load_bucket(struct s3_req *r);

/* Validate a bucket name by S3's rules. */
bool s3_bucket_name_valid(const char *name);

/* ---- size caps ----
 *
 * The size caps of the s3 layer, in one place: response documents
 * (S3_DOC_*), request bodies (S3_BODY_*) and what is read out of them.  A
 * response document that reaches its cap is answered with InternalError
 * (s3_respond_xml), never sent cut short; a request body beyond its cap is
 * refused.  Keys are at most KURA_OBJECT_KEY_MAX bytes and escape to at
 * most 8 bytes per byte ("&#xFFFD;"), so a document of n keys needs up to
 * n * 8 KiB.  The cap of a listing page is [limits] max_list_response
 * (svc->max_list_response).
 */
#define S3_DOC_SMALL_MAX \
	(4u << 10) /* location, versioning, ACL, copy results */
#define S3_DOC_ENCRYPTION_MAX (8u << 10) /* GetBucketEncryption */
#define S3_DOC_UPLOAD_MAX \
	(16u << 10)		     /* Initiate/Complete upload: a key twice */
#define S3_DOC_ERROR_MAX (64u << 10) /* an error: a key twice and a message */
#define S3_DOC_TAGGING_MAX (64u << 10) /* GetObjectTagging: S3_MAX_TAGS tags */
#define S3_DOC_PARTS_MAX (4u << 20)    /* ListParts: S3_LIST_MAX parts */
#define S3_DOC_DELETE_MAX (8u << 20)   /* DeleteObjects: 1000 keys */
#define S3_DOC_BUCKETS_MAX (64u << 20) /* ListBuckets: all of a tenant's */
#define S3_HEADER_LIST_MAX (4u << 10) /* <HeadersNotSigned>: names, cut short */
#define S3_BODY_CONFIG_MAX \
	(64u << 10) /* PutBucketAcl, -Encryption, PutObjectTagging */
#define S3_BODY_DELETE_MAX (8u << 20) /* DeleteObjects request: 1000 keys */
/* PutBucketLifecycleConfiguration: 1000 rules of a few KiB at most, and
 * GetBucketLifecycleConfiguration's answer, escaped. */
#define S3_BODY_LIFECYCLE_MAX (8u << 20)
#define S3_DOC_LIFECYCLE_MAX (32u << 20)
/* CompleteMultipartUpload request: 10000 parts of about 100 bytes each,
 * or [limits] max_xml_body when that is larger. */
#define S3_BODY_COMPLETE_MIN (2u << 20)
#define S3_XML_TEXT_MAX (64u << 10) /* character data of one element read */
#define S3_TAG_TEXT_MAX \
	(4u << 10) /* a tag's key or value as x-amz-tagging sends it */

/* ---- XML ---- */

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/*
 * The writer appends to a struct kura_buf and returns nothing, as SQLite's
 * sqlite3_str_append does: a failure (the document's cap reached, memory)
 * sticks in the buffer, which drops what it held, and every later append
 * is a no-op.  The document's owner reads the failure once: s3_respond_xml
 * answers InternalError then, never a document with holes.
 */
/* The XML declaration. */
void s3_xml_decl(struct kura_buf *b);
/* The XML declaration and <name xmlns="S3_XMLNS">, the root element of
 * every S3 response document. */
void s3_xml_root(struct kura_buf *b, const char *name);
/* Markup written as it is: a literal that is well-formed as written. */
void s3_xml_raw(struct kura_buf *b, const char *markup);
/* <name> / </name> */
void s3_xml_open(struct kura_buf *b, const char *name);
void s3_xml_close(struct kura_buf *b, const char *name);
/* <name>escaped text</name> */
void s3_xml_elem(struct kura_buf *b, const char *name, const char *text,
		 size_t len);
void s3_xml_elem_str(struct kura_buf *b, const char *name, const char *text);
void s3_xml_elem_u64(struct kura_buf *b, const char *name, uint64_t v);
/* Like s3_xml_elem, percent-encoding the text instead when url is true
 * (encoding-type=url in listings). */
void s3_xml_elem_enc(struct kura_buf *b, const char *name, const char *text,
		     size_t len, bool url);
/* Append text escaped for XML character data / attribute values.  Bytes that
 * XML 1.0 cannot carry (control characters other than tab, CR, LF) are
 * written as numeric references so that the document stays well-formed. */
void s3_xml_escape(struct kura_buf *b, const char *s, size_t n);

/* A parsed XML element (a small DOM with hard limits). */
struct s3_xml_node {
	const char *name; /* local name, namespace stripped */
	const char *text; /* concatenated character data */
	size_t text_len;
	struct s3_xml_node *child; /* first child */
	struct s3_xml_node *next;  /* next sibling */
};

#define S3_XML_MAX_DEPTH 8
#define S3_XML_MAX_NODES 20000

/* Parse doc into nodes allocated from pool.  KURA_EINVAL when it is not
 * well-formed, too deep, has too many elements, or has a DOCTYPE (entity
 * expansion is never allowed). */
KURA_WUR
enum kura_err s3_xml_parse(const char *doc, size_t n, struct kura_pool *pool,
			   struct s3_xml_node **root);
/* First child element named name, or NULL. */
const struct s3_xml_node *s3_xml_child(const struct s3_xml_node *n,
				       const char *name);

/* ---- the listing engine (listing.c) ----
 *
 * One cursor walk serves every listing, as Redis's scanGenericCommand
 * serves SCAN, SSCAN, HSCAN and ZSCAN: the rows of a bucket in (key, id)
 * order — objects (ListObjects, ListObjectsV2), uploads
 * (ListMultipartUploads); versions next — with S3's prefix and delimiter
 * roll-up into common prefixes, the page size and truncation.  What is
 * listed is a struct s3_list_source.  Every row used is checked against
 * its seal, also one that only names a common prefix or tells that the page
 * is truncated: a forged key could invent a prefix.
 */

#define S3_LIST_MAX \
	1000 /* entries of a page: max-keys, max-uploads, max-parts */

/* A place in a listing: after the row (key, id), or — prefix — after every
 * key that begins with key. */
struct s3_list_pos {
	const char *key;
	size_t len;
	const char *id; /* orders the rows of one key; "" for none or a prefix */
	bool prefix;
};

/* A row as the walk sees it. */
struct s3_list_row {
	struct s3_list_pos pos;	    /* prefix false */
	const uint8_t *version_uid; /* for the integrity report */
};

/* What a listing walks: one kind of row of r->bucket. */
struct s3_list_source {
	size_t row_size;
	/* Up to want rows whose key begins with prefix and that come strictly
	 * after *after (never a prefix position), in order; the array of
	 * row_size elements in r->pool.  A kura error, not a response. */
	enum kura_err (*fetch)(struct s3_req *r, struct kura_str prefix,
			       const struct s3_list_pos *after, size_t want,
			       void **rows, size_t *n, struct kura_error *err);
	/* Check a row against its seal (seal.h): KURA_EINTEGRITY when it
	 * fails. */
	enum kura_err (*open)(struct s3_req *r, void *row,
			      struct kura_error *err);
	void (*describe)(const void *row, struct s3_list_row *out);
};

struct s3_list_query {
	struct kura_str prefix;
	struct kura_str delimiter; /* len 0: no roll-up */
	struct s3_list_pos start;  /* the page begins after it */
	uint64_t max;		   /* entries per page, <= S3_LIST_MAX */
	bool url;		   /* encoding-type=url */
};

/* An entry of a page: a row, or a common prefix (row NULL). */
struct s3_list_entry {
	const char *key;
	size_t len;
	const void *row;
};

struct s3_list_page {
	struct s3_list_entry *entries; /* in r->pool */
	size_t count;
	bool truncated;
	struct s3_list_pos next; /* the last entry: where the next page begins */
};

/* The parameters every listing shares: prefix, delimiter, encoding-type and
 * the page size named max_name (S3_LIST_MAX when absent, at most that);
 * q->start is left empty.  Responds InvalidArgument (bad_max as the message
 * for a bad page size) and returns false. */
bool s3_list_parse(struct s3_req *r, const char *max_name, const char *bad_max,
		   struct s3_list_query *q);
/* A marker that is itself a common prefix under q (S3 hands those out as
 * NextMarker and NextKeyMarker): the next page resumes after everything
 * rolled up under it, not at it — that would roll it up again, forever. */
bool s3_list_marker_is_prefix(const struct s3_list_query *q,
			      struct kura_str marker);
/* Walk q over src into *page (q->max 0: only whether anything is there,
 * page->truncated).  Responds — the mapped error; 500 after the integrity
 * report for a row that fails its seal — and returns false on failure. */
bool s3_list_walk(struct s3_req *r, const struct s3_list_source *src,
		  const struct s3_list_query *q, struct s3_list_page *page);
/* <CommonPrefixes><Prefix>...</Prefix></CommonPrefixes> for each common
 * prefix of page, in order. */
void s3_list_write_prefixes(struct kura_buf *b, const struct s3_list_page *page,
			    bool url);

/* ---- ranges ---- */

enum s3_range_result {
	S3_RANGE_NONE,		/* no usable Range: serve the whole object */
	S3_RANGE_OK,		/* [*first, *last] inclusive */
	S3_RANGE_UNSATISFIABLE, /* 416 */
};

/* Parse a Range header value for an object of size bytes.  Syntactically
 * invalid or multi-range values yield S3_RANGE_NONE (served whole, as
 * RFC 9110 allows and S3 does). */
enum s3_range_result s3_range_parse(const char *value, size_t n, uint64_t size,
				    uint64_t *first, uint64_t *last);

/* ---- conditional requests (object_get.c) ---- */

/* Evaluate If-Match / If-None-Match / If-Modified-Since /
 * If-Unmodified-Since style headers (named by the caller) against o in
 * RFC 9110 order: 0 to proceed, 412 or 304. */
unsigned s3_conditions(struct s3_req *r, const struct kura_object *o,
		       const char *if_match, const char *if_none_match,
		       const char *if_modified_since,
		       const char *if_unmodified_since);

/* ---- payload (request body) ---- */

/* Prepare body verification from the request headers; responds and returns
 * false on a bad header. */
bool s3_payload_begin(struct s3_req *r);
/* Feed raw body bytes. */
void s3_payload_feed(struct s3_req *r, const uint8_t *p, size_t n);
/* The body ended: checks lengths, SHA-256, Content-MD5; responds and returns
 * false on a mismatch. */
bool s3_payload_end(struct s3_req *r);

/* The operation takes an XML body of at most max bytes: collect it into
 * r->xml_body and call finish at the end (payload checks done). */
void s3_expect_xml(struct s3_req *r, uint64_t max,
		   void (*finish)(struct s3_req *r));
/* The request's XML body parsed, with root element root_name; responds
 * MalformedXML and returns NULL otherwise (also for an empty body). */
const struct s3_xml_node *s3_xml_body(struct s3_req *r, const char *root_name);
/* Operations S3 takes only with a digest of the body (DeleteObjects,
 * PutBucketLifecycleConfiguration): Content-MD5 or an x-amz-checksum-*
 * header (checked against the body by s3_payload_end); answers
 * InvalidRequest and returns false without one. */
bool s3_body_digest_required(struct s3_req *r);

/* ---- server-side encryption headers (sse.c) ---- */

/* For a write (PUT, CreateMultipartUpload, copy target): SSE-C headers,
 * x-amz-server-side-encryption(-aws-kms-key-id), or the bucket's default.
 * Responds and returns false on a bad or conflicting header. */
bool s3_sse_for_write(struct s3_req *r, struct s3_sse *out);
/* For reading o (GET, HEAD, copy source when copy_source): an SSE-C
 * object needs its key (AccessDenied for a wrong one); others refuse SSE-C
 * headers.  Responds and returns false on failure. */
bool s3_sse_for_read(struct s3_req *r, const struct kura_object *o,
		     bool copy_source, struct s3_sse *out);
/* GET and HEAD: x-amz-server-side-encryption, -aws-kms-key-id and -context
 * belong to writes; respond 400 InvalidArgument, as AWS, and return false
 * when one is sent. */
bool s3_sse_refuse_on_read(struct s3_req *r);
/* The same for anything stored with (mode, kms_key_id, ssec_hmac) under
 * version_uid — an upload in progress, for UploadPart. */
bool s3_sse_match(struct s3_req *r, enum kura_sse mode, uint64_t kms_key_id,
		  const uint8_t *ssec_hmac,
		  const uint8_t version_uid[KURA_UID_LEN], bool copy_source,
		  struct s3_sse *out);
/* The check value to store for data written as s says (zeros unless
 * SSE-C). */
enum kura_err s3_sse_check_value(struct s3_req *r, const struct s3_sse *s,
				 const uint8_t version_uid[KURA_UID_LEN],
				 uint8_t out[KURA_SSEC_HMAC_LEN],
				 struct kura_error *err);
/* Parse SSE-C headers (the copy-source ones when copy_source); *present
 * tells whether any was sent.  Responds and returns false when malformed. */
bool s3_ssec_parse(struct s3_req *r, bool copy_source, struct s3_sse *out,
		   bool *present);
/* Resolve a KMS key id as clients send it (a kura key name, or an ARN
 * ending in ":key/NAME") to an enabled key of the tenant; responds
 * KMS.NotFoundException / KMS.DisabledException otherwise. */
bool s3_sse_resolve_kms_key(struct s3_req *r, const struct kura_str *id,
			    struct s3_sse *out);
/* The SSE response headers AWS sends for data stored as s says. */
void s3_sse_respond_headers(struct s3_req *r, const struct s3_sse *s);
/* Wipe the customer key. */
void s3_sse_release(struct s3_sse *s);

/* ---- writing a blob (blob_write.c) ---- */

struct s3_blob {
	struct kura_store *store;
	struct kura_binding binding;
	struct kura_part part; /* filled as the blob is written */
	struct kura_secret *dek;
	struct kura_store_writer *writer;
	struct kura_sealer *sealer;
	EVP_MD_CTX *md5;
	uint8_t md5_raw[16]; /* valid after s3_blob_stage */
	bool md5_etag;	     /* the ETag is the MD5 (SSE-S3 only) */
	bool active;
	bool staged;	/* durable, not yet referenced */
	bool committed; /* metadata references it */
};

/* A new blob for part part_no of object version version_uid in bucket,
 * encrypted as sse says (its DEK wrapped by the bucket key of the chosen
 * kura key, and for SSE-C also bound to the customer's key). */
enum kura_err s3_blob_begin(struct s3_blob *b, struct kura_service *svc,
			    const struct kura_bucket *bucket,
			    const uint8_t version_uid[KURA_UID_LEN],
			    uint32_t part_no, const struct s3_sse *sse,
			    struct kura_error *err);
enum kura_err s3_blob_write(struct s3_blob *b, const void *p, size_t n,
			    struct kura_error *err);
/* Seal the last segment and make the blob durable; fills b->part (size,
 * etag, mtime) and b->md5_raw.  The ETag is the hex MD5 of the plaintext
 * for SSE-S3 and, as AWS does for SSE-C and SSE-KMS, random hex for those:
 * a value derived from the plaintext would outlive the key that protects
 * it (and would let a guess of an SSE-C object's content be confirmed). */
enum kura_err s3_blob_stage(struct s3_blob *b, struct kura_error *err);
/* After the metadata commit: mark committed and publish. */
void s3_blob_publish(struct s3_blob *b, const char *reqid);
/* Release everything; remove the staged blob unless committed.  Safe to
 * call more than once and on a blob that never began. */
void s3_blob_discard(struct s3_blob *b);
/* For operations that stream their body into one blob (PutObject,
 * UploadPart): s3_blob_op_start requires a body length (Content-Length or
 * chunked), allocates size zeroed bytes of r->op_state — whose first member
 * must be a struct s3_blob — and sets op_body, op_cleanup and md5_by_op; it
 * responds and returns NULL on failure.  s3_blob_op_stage, at the end,
 * stages the blob and checks Content-MD5 against it; it responds and
 * returns false on failure. */
void *s3_blob_op_start(struct s3_req *r, size_t size);
bool s3_blob_op_stage(struct s3_req *r);
enum kura_err s3_blob_op_body(struct s3_req *r, const uint8_t *p, size_t n,
			      struct kura_error *err);
void s3_blob_op_cleanup(struct s3_req *r);
/* Remove some queued garbage blobs now (after a commit that queued them);
 * failures are logged, the background collector retries. */
void s3_collect_garbage(struct s3_req *r);

/* ---- versions and conditional writes (versions.c, write_cond.c) ---- */

/* "null" or 32 hex digits, and the NUL. */
#define S3_VERSION_ID_MAX 33

/* Which version a request names. */
struct s3_version_sel {
	bool given;	   /* a version id was given */
	bool null_version; /* it was "null" */
	uint8_t uid[KURA_UID_LEN];
};

/* Decode a version id; false when malformed. */
bool s3_version_decode(const char *v, size_t n, struct s3_version_sel *sel);
/* Parse a version id (from ?versionId, a copy source, a marker); responds
 * 400 InvalidArgument and returns false when malformed. */
bool s3_version_parse(struct s3_req *r, const char *v, size_t n,
		      struct s3_version_sel *sel);
/* The request's ?versionId, if any (sel->given false when absent). */
bool s3_request_version(struct s3_req *r, struct s3_version_sel *sel);
/* The version id S3 shows for o: "null" or its uid in hex. */
void s3_version_id(const struct kura_object *o, char out[S3_VERSION_ID_MAX]);
/* The version id of a version uid (never "null"). */
void s3_version_id_of(const uint8_t uid[KURA_UID_LEN],
		      char out[S3_VERSION_ID_MAX]);
/* Make o a new version for r->bucket: the null version unless versioning
 * is enabled, ordered by the clock (microseconds). */
void s3_version_prepare(struct s3_req *r, struct kura_object *o);
/* x-amz-version-id (and x-amz-delete-marker for a marker) for o, when
 * r->bucket has versioning configured. */
void s3_version_headers(struct s3_req *r, const struct kura_object *o);

/* Load the version sel names (NULL or not given: the newest) of object
 * key of bucket b into *o (pool memory) and check it against its seal
 * (ETag restored); responds NoSuchKey / NoSuchVersion, for a delete
 * marker 404 (the newest) or 405 (named) with x-amz-delete-marker, 500
 * for an integrity failure, or the mapped error, and returns false on
 * failure. */
bool s3_load_object(struct s3_req *r, const struct kura_bucket *b,
		    const char *key, size_t key_len,
		    const struct s3_version_sel *sel, struct kura_object **o);
/* s3_load_object for r->key of r->bucket and the request's ?versionId. */
bool s3_load_requested(struct s3_req *r, struct kura_object **o);
/* Writing one version: the store's call (object_put, upload_complete). */
typedef enum kura_err (*s3_version_write_fn)(struct s3_req *r,
					     const struct kura_object *o,
					     const struct kura_put_cond *cond,
					     void *ctx, struct kura_error *err);
/* Seal o and write it with fn; when another writer got a newer version in
 * first, take a larger vseq and try again (a few times).  With cond, a
 * change of the newest version is returned as KURA_ECONFLICT for the
 * caller (s3_write_cond_conflict).  Responds nothing but a sealing
 * failure (then KURA_EINTERNAL with err saying it was answered). */
enum kura_err s3_version_write(struct s3_req *r, struct kura_object *o,
			       const struct kura_put_cond *cond,
			       s3_version_write_fn fn, void *ctx,
			       struct kura_error *err);
/* s3_version_write through object_put; responds on failure (NoSuchBucket,
 * 412/409 for a condition, the mapped error). */
bool s3_version_put(struct s3_req *r, struct kura_object *o,
		    const struct kura_put_cond *cond);
/* A delete marker for key in r->bucket (DeleteObject, DeleteObjects in a
 * versioned bucket), into *out; with cond as s3_version_write. */
enum kura_err s3_put_delete_marker(struct s3_req *r, const char *key,
				   size_t key_len,
				   const struct kura_put_cond *cond,
				   struct kura_object *out,
				   struct kura_error *err);

/* ---- Object Lock (object_lock.c) ---- */

/* The Object Lock settings a write gives its version. */
struct s3_lock {
	enum kura_lock_mode mode;
	int64_t until_ms;
	bool legal_hold;
};
/* The x-amz-object-lock-* headers of a write (PutObject, CopyObject,
 * CreateMultipartUpload), and with with_default r->bucket's default
 * retention when they name none; responds 400 for bad or misplaced ones
 * and returns false. */
bool s3_lock_for_write(struct s3_req *r, struct s3_lock *out,
		       bool with_default);
/* r->bucket's default retention from now, when out has no mode. */
void s3_lock_default(struct s3_req *r, struct s3_lock *out);
/* x-amz-object-lock-* response headers for version o (GET, HEAD). */
void s3_lock_headers(struct s3_req *r, const struct kura_object *o);
/* x-amz-bypass-governance-retention: true. */
bool s3_bypass_governance(struct s3_req *r);
/* S3's message for a change Object Lock refuses. */
#define S3_LOCK_DENIED "Access Denied because object protected by object lock."
/* Respond 403 AccessDenied for a change Object Lock refuses (detail: why,
 * for the log) and note the refusal for the audit record. */
void s3_lock_denied(struct s3_req *r, const char *detail);

/* What deleting a key did (DeleteObject, DeleteObjects). */
struct s3_deleted {
	bool found;	/* something was removed or a marker added */
	bool marker;	/* a delete marker was added or removed */
	bool versioned; /* the answer names a version (version_id) */
	char version_id[S3_VERSION_ID_MAX];
	uint8_t uid[KURA_UID_LEN]; /* that version's uid */
};
/* Delete key of r->bucket as DeleteObject does: the version sel names
 * for good, or — none named — the null version of a bucket never
 * versioned, else a new delete marker (the null one when suspended).
 * With cond (If-Match), only while the newest version is the one
 * checked. */
enum kura_err s3_delete_key(struct s3_req *r, const char *key, size_t key_len,
			    const struct s3_version_sel *sel,
			    const struct kura_put_cond *cond,
			    struct s3_deleted *out, struct kura_error *err);

/* If-Match / If-None-Match on a write of r->key (PutObject, Complete,
 * CopyObject) or If-Match on DeleteObject: *cond NULL when the request
 * has none; otherwise the newest version was read and the condition held,
 * and *cond holds its vseq for the store to check.  Responds 412 (or
 * 404 NoSuchKey for If-Match on a missing key, 501 for an unsupported
 * form) and returns false. */
bool s3_write_cond(struct s3_req *r, struct kura_put_cond *storage,
		   const struct kura_put_cond **cond);
/* The store found the newest version changed (KURA_ECONFLICT): evaluate
 * the conditions again and answer 412 if they fail now, else 409. */
void s3_write_cond_conflict(struct s3_req *r);

/* ---- metadata seals and integrity failures (integrity.c) ---- */

/* Seal a new object row of r->bucket (seal.h); responds on failure. */
bool s3_seal_new_object(struct s3_req *r, struct kura_object *o);
/* rc == KURA_OK: true.  Otherwise respond — for KURA_EINTEGRITY 500 after
 * s3_integrity_failure, else the mapped error — and return false. */
bool s3_seal_ok(struct s3_req *r, enum kura_err rc,
		const struct kura_error *err, const char *bucket,
		const char *key, size_t key_len, const uint8_t *version_uid);
/* Record that something stored failed authentication: log, count, and an
 * "integrity.failure" audit record.  Does not respond. */
void s3_integrity_failure(struct s3_req *r, const char *bucket, const char *key,
			  size_t key_len, const uint8_t *version_uid,
			  const char *what);
/* Who asked, for a report made outside the request (a GET's body stream,
 * which outlives the request's handler). */
struct s3_who {
	const char *request_id;
	uint64_t tenant_id;
	const char *access_key; /* NULL when none */
	const char *source;	/* NULL when unknown */
};
void s3_integrity_report(struct kura_service *svc, const struct s3_who *who,
			 const char *bucket, const char *key, size_t key_len,
			 const uint8_t *version_uid, const char *what);

/* ---- reading an object's plaintext (obj_read.c) ---- */

struct s3_objread;

/* obj (and its parts) must outlive the reader.  customer_key: the SSE-C
 * key of an SSE-C object (checked already), else NULL.  seal: the context
 * that opened obj's seal (may be NULL): its bucket key, when the parts'
 * DEKs are wrapped by the same one, is used instead of a second lookup. */
enum kura_err s3_objread_new(struct kura_service *svc,
			     const struct kura_bucket *bucket,
			     const struct kura_object *obj,
			     const struct kura_secret *customer_key,
			     const struct kura_seal_ctx *seal,
			     struct s3_objread **out, struct kura_error *err);
/* Up to n bytes at object offset off into buf; *got == 0 only at the end.
 * KURA_EINTEGRITY when stored data fails authentication. */
enum kura_err s3_objread_read(struct s3_objread * or, uint64_t off, void *buf,
			      size_t n, size_t *got, struct kura_error *err);
/* Authenticate the segment holding off now (to fail before a response). */
enum kura_err s3_objread_verify_at(struct s3_objread * or, uint64_t off,
				   struct kura_error *err);
void s3_objread_free(struct s3_objread * or);

/* ---- request headers shared by PUT, multipart and copy (obj_headers.c) ---- */

/* Fill content-* headers, user metadata (x-amz-meta-*, 2 KiB limit) and
 * tags (x-amz-tagging) of o from the request.  Responds and returns false
 * on a bad header. */
bool s3_object_headers_from_request(struct s3_req *r, struct kura_object *o);
/* A stored user metadata value as a response header carries it: as it is
 * when ASCII, else RFC 2047-encoded ("=?UTF-8?B?...?="), as AWS returns
 * it; in the pool, NULL when out of memory. */
const char *s3_meta_header_value(struct s3_req *r, const char *v);
/* ---- what kura does not build (unsupported.c) ---- */

/* Respond 501 NotImplemented: "<what> is not implemented by this server."
 * (logged at INFO). */
void s3_not_implemented(struct s3_req *r, const char *what);
/* The S3 operation (or feature) a request's sub-resource parameter asks
 * for when kura does not implement it, else NULL. */
const char *s3_unimplemented_op(const struct s3_req *r);
/* Headers of a write (PUT, copy, CreateMultipartUpload) naming features
 * kura does not provide: respond NotImplemented (AccessDenied for public
 * ACLs, InvalidStorageClass for an unknown class) and return false. */
bool s3_check_unsupported_put_headers(struct s3_req *r);
/* The same for CreateBucket: object lock, grants, public ACLs, ownership
 * controls other than BucketOwnerEnforced. */
bool s3_check_unsupported_bucket_headers(struct s3_req *r);
/* Parse a form-encoded tag set (x-amz-tagging) into JSON: NULL with *ok
 * for no tags; responds and sets *ok false on a bad tag set. */
const char *s3_tags_from_query(struct s3_req *r, const char *q, size_t n,
			       bool *ok);

#define S3_MAX_TAGS 10
/* Tag sets are built as a jansson object (json_t *). */
struct json_t;
/* Add one tag after S3's checks (count, lengths, UTF-8, duplicates);
 * responds and returns false on failure. */
bool s3_tag_add(struct s3_req *r, struct json_t *obj, const char *k,
		size_t klen, const char *v, size_t vlen);
/* JSON text of a tag set in the pool (NULL when empty or on error). */
const char *s3_tags_json(struct s3_req *r, struct json_t *obj);

/* ---- operations: start functions (run after authentication) ---- */

void s3_list_buckets(struct s3_req *r);
void s3_create_bucket(struct s3_req *r);
void s3_head_bucket(struct s3_req *r);
void s3_delete_bucket(struct s3_req *r);
void s3_get_bucket_location(struct s3_req *r);
void s3_get_bucket_versioning(struct s3_req *r);
void s3_put_bucket_versioning(struct s3_req *r);
void s3_list_object_versions(struct s3_req *r);
void s3_put_object_lock_config(struct s3_req *r);
void s3_get_object_lock_config(struct s3_req *r);
void s3_put_object_retention(struct s3_req *r);
void s3_get_object_retention(struct s3_req *r);
void s3_put_object_legal_hold(struct s3_req *r);
void s3_get_object_legal_hold(struct s3_req *r);
void s3_list_objects(struct s3_req *r);
void s3_put_object(struct s3_req *r);
void s3_get_object(struct s3_req *r);
void s3_delete_object(struct s3_req *r);
void s3_create_multipart_upload(struct s3_req *r);
void s3_upload_part(struct s3_req *r);
void s3_complete_multipart_upload(struct s3_req *r);
void s3_abort_multipart_upload(struct s3_req *r);
void s3_list_parts(struct s3_req *r);
void s3_list_multipart_uploads(struct s3_req *r);
void s3_copy_object(struct s3_req *r);
void s3_upload_part_copy(struct s3_req *r);
void s3_delete_objects(struct s3_req *r);
void s3_get_object_attributes(struct s3_req *r);
void s3_get_object_tagging(struct s3_req *r);
void s3_put_object_tagging(struct s3_req *r);
void s3_delete_object_tagging(struct s3_req *r);
void s3_get_acl(struct s3_req *r);
void s3_put_acl(struct s3_req *r);
void s3_put_bucket_encryption(struct s3_req *r);
void s3_get_bucket_encryption(struct s3_req *r);
void s3_delete_bucket_encryption(struct s3_req *r);
void s3_get_bucket_policy(struct s3_req *r);
void s3_delete_bucket_policy(struct s3_req *r);
void s3_put_bucket_lifecycle(struct s3_req *r);
void s3_get_bucket_lifecycle(struct s3_req *r);
void s3_delete_bucket_lifecycle(struct s3_req *r);

/* ---- lifecycle (lifecycle_xml.c, lifecycle.c) ---- */

/* The first fault found in a lifecycle document: S3's code and message. */
struct s3_lc_fault {
	bool set;
	enum s3_error code;
	char msg[256];
};
/* Read a <LifecycleConfiguration> into out (strings from pool); false with
 * *f set when S3 would refuse it (or it asks for a transition: 501). */
bool s3_lc_from_xml(const struct s3_xml_node *root, struct kura_pool *pool,
		    struct kura_lc_config *out, struct s3_lc_fault *f);
/* GetBucketLifecycleConfiguration's document for c. */
void s3_lc_to_xml(struct kura_buf *b, const struct kura_lc_config *c);
/* Add x-amz-expiration for the current version o of r->bucket when an
 * enabled Expiration rule (Days or Date) selects it. */
void s3_expiration_header(struct s3_req *r, const struct kura_object *o);

/* Shared by UploadPart and UploadPartCopy (multipart.c). */
bool s3_part_begin(struct s3_req *r, struct kura_upload **upload,
		   struct s3_blob *blob);
void s3_commit_part(struct s3_req *r, struct kura_upload *u,
		    struct s3_blob *blob, bool copy_result);

/* Authenticate r (SigV4 header or presigned query).  Responds and returns
 * false on failure. */
bool s3_authenticate(struct s3_req *r);

#endif
