package logscan

import (
	"bytes"
)

// Throttle is one recognised S3 throttling occurrence: one log event, however
// many stack lines repeat the exception.
type Throttle struct {
	// Form names the client that raised it: sdk-v1 (flink-s3-fs-presto and
	// anything else on AWS SDK for Java v1, shaded or not), s3a, emrfs,
	// sdk-v2, http-429.
	Form string
	// Bucket is from the first s3:// s3a:// s3p:// path in the event;
	// UnknownBucket when the event names none.
	Bucket []byte
	// Operation is the S3 API operation when the event shows it (PutObject,
	// HeadObject, …, or S3A's operation such as getFileStatus); "" otherwise.
	// Its values come from a fixed table, so it is safe as a tag.
	Operation string
	// CheckpointIO: the event names no bucket, and its trace is Flink
	// writing or deleting checkpoint files, so the bucket is the checkpoint
	// directory's (see checkpointDirBucket).
	CheckpointIO bool
}

// UnknownBucket is the bucket label of throttling events that name no bucket.
const UnknownBucket = "unknown"

// Literals that any throttling form contains. Every event is checked for
// them with bytes.Contains before anything else runs: an event without one
// costs a handful of memchr-speed scans and no allocation.
var (
	litSlowDown    = []byte("SlowDown")                // S3 error code (SDK v1/v2, S3A ":SlowDown", MinIO SlowDownWrite)
	litSlowDownSp  = []byte("Slow Down")               // status line "503 Slow Down" (EMRFS, bodiless HEAD answers)
	litReduceRate  = []byte("educe your request rate") // S3's message; "Please reduce …", "Reduce …"
	litThrottledEx = []byte("ThrottledException")      // S3A AWSServiceThrottledException
	litStatus429   = []byte("Status Code: 429")        // SDK v1 "Status Code: 429;" and v2 "Status Code: 429,"
	litTooMany     = []byte("TooManyRequests")         // error code of S3-compatible stores
	litTooManySp   = []byte("Too Many Requests")       // HTTP reason phrase
)

// Markers that tie an event to S3: a throttling literal in an event without
// one of these (a Kafka client's own "Too Many Requests", DynamoDB's
// throttling through S3Guard) is not S3 throttling.
var (
	litS3Upper   = []byte("S3") // AmazonS3Exception, "Service: Amazon S3", "Service: S3", S3AFileSystem, PrestoS3FileSystem
	litS3Lower   = []byte("s3") // s3:// paths, flink-s3-fs-presto jars, org.apache.flink.fs.s3presto
	litDynamoDB  = []byte("DynamoDB")
	litEMRFS     = []byte("com.amazon.ws.emr.hadoop.fs")
	litSDKv2     = []byte("software.amazon.awssdk")
	litS3AEx     = []byte("org.apache.hadoop.fs.s3a.")
	litS3Service = []byte("Service: S3,") // SDK v2 message form
)

// litXception is in every form above: they are all Java exceptions
// (AmazonS3Exception, S3Exception, AWSServiceThrottledException, and the
// SDK's request metrics line "Exception=[…]"). bytes.Index skips ahead by
// the needle's first byte, and 'x' is rare in log text, so this one scan is
// what an ordinary event costs.
var litXception = []byte("xception")

// detectThrottle reports whether ev is an S3 throttling occurrence. It does
// not allocate; Bucket aliases ev.
func detectThrottle(ev []byte, out *Throttle) bool {
	if !bytes.Contains(ev, litXception) {
		return false
	}
	// Throttling shows in exception messages, never in stack frames: only
	// the few message lines of a trace are searched.
	var f throttleFlags
	for rest := ev; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if !isFrame(line) {
			f.scan(line)
		}
	}
	only429 := f.tooMany && !f.slow && !f.reduce
	if !f.slow && !f.reduce && !f.s3a && !f.tooMany {
		return false
	}
	// Past the prefilter: rare events, so thoroughness beats speed here.
	if !bytes.Contains(ev, litS3Upper) && !bytes.Contains(ev, litS3Lower) {
		return false
	}
	if f.s3a && !f.slow && !f.reduce && !f.tooMany && bytes.Contains(ev, litDynamoDB) {
		// S3Guard's DynamoDB table was throttled, not S3.
		return false
	}
	*out = Throttle{Form: throttleForm(ev, f.s3a, only429)}
	out.Bucket = extractBucket(ev)
	out.Operation = extractOperation(ev)
	out.CheckpointIO = out.Bucket == nil && checkpointIO(ev)
	return true
}

// checkpointStorage are the classes through which Flink writes and deletes
// checkpoint files (state files, _metadata, the cleaner's discards). The
// presto client's throttling traces name no path — Flink prints the state
// file as "null" — but one of these is in each of them, TaskManager's and
// JobManager's alike.
var checkpointStorage = [...][]byte{
	[]byte("FsCheckpointStreamFactory"),
	[]byte("FsCheckpointMetadataOutputStream"),
	[]byte("FsCheckpointStorageAccess"),
	[]byte("FsCompletedCheckpointStorageLocation"),
	[]byte("CheckpointsCleaner"),
}

func checkpointIO(ev []byte) bool {
	for _, c := range checkpointStorage {
		if bytes.Contains(ev, c) {
			return true
		}
	}
	return false
}

var (
	litConfigProperty = []byte("Loading configuration property: ")
	// The checkpoint directory's keys: Flink 1.x and 2.x (both are read).
	checkpointDirKeys = [...][]byte{[]byte("state.checkpoints.dir, "), []byte("execution.checkpointing.dir, ")}
)

// checkpointDirBucket recognises the line of a log's start-up configuration
// that sets the checkpoint directory (GlobalConfiguration's "Loading
// configuration property: execution.checkpointing.dir,
// s3p://bucket/checkpoints") and returns its bucket: nil for a directory
// that is not on S3.
func checkpointDirBucket(h []byte) (bucket []byte, ok bool) {
	i := bytes.Index(h, litConfigProperty)
	if i < 0 {
		return nil, false
	}
	kv := h[i+len(litConfigProperty):]
	for _, k := range checkpointDirKeys {
		if v, ok := bytes.CutPrefix(kv, k); ok {
			return extractBucket(v), true
		}
	}
	return nil, false
}

type throttleFlags struct{ slow, reduce, s3a, tooMany bool }

func (f *throttleFlags) scan(line []byte) {
	f.slow = f.slow || bytes.Contains(line, litSlowDown) || bytes.Contains(line, litSlowDownSp)
	f.reduce = f.reduce || bytes.Contains(line, litReduceRate)
	f.s3a = f.s3a || bytes.Contains(line, litThrottledEx)
	f.tooMany = f.tooMany || bytes.Contains(line, litStatus429) || bytes.Contains(line, litTooMany) || bytes.Contains(line, litTooManySp)
}

// isFrame reports whether line is a stack frame ("\tat …", "    at …") or
// an elision ("\t... 12 more").
func isFrame(line []byte) bool {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == 0 {
		return false
	}
	l := line[i:]
	return len(l) >= 3 && (l[0] == 'a' && l[1] == 't' && l[2] == ' ' || l[0] == '.' && l[1] == '.' && l[2] == '.')
}

func throttleForm(ev []byte, s3a, only429 bool) string {
	switch {
	case s3a || bytes.Contains(ev, litS3AEx):
		return "s3a"
	case bytes.Contains(ev, litEMRFS):
		return "emrfs"
	case only429:
		return "http-429"
	case bytes.Contains(ev, litSDKv2) || bytes.Contains(ev, litS3Service):
		return "sdk-v2"
	}
	return "sdk-v1"
}

var schemeSep = []byte("://")

// extractBucket returns the bucket of the first s3://, s3a:// or s3p://
// URI in ev with a valid bucket name, or nil.
func extractBucket(ev []byte) []byte {
	for from := 0; ; {
		i := bytes.Index(ev[from:], schemeSep)
		if i < 0 {
			return nil
		}
		i += from
		from = i + len(schemeSep)
		if !s3Scheme(ev[:i]) {
			continue
		}
		end := from
		for end < len(ev) && bucketByte(ev[end]) {
			end++
		}
		// 3-63 characters by S3's rules; legacy us-east-1 buckets may have
		// capitals and underscores, which bucketByte admits.
		if n := end - from; n >= 3 && n <= 63 && (end == len(ev) || bucketEnd(ev[end])) {
			return ev[from:end]
		}
	}
}

// s3Scheme reports whether b ends with an s3, s3a or s3p scheme that starts
// a word.
func s3Scheme(b []byte) bool {
	for _, s := range [...]string{"s3", "s3a", "s3p"} {
		n := len(s)
		if len(b) >= n && string(b[len(b)-n:]) == s && (len(b) == n || !schemeByte(b[len(b)-n-1])) {
			return true
		}
	}
	return false
}

func schemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'
}

func bucketByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c >= 'A' && c <= 'Z' || c == '_'
}

// bucketEnd is what may follow a bucket name in a URI as logs print it.
func bucketEnd(c byte) bool {
	switch c {
	case '/', ' ', '\t', '\n', '\r', '"', '\'', ')', ']', '>', ',', ';', ':', '?', '#':
		return true
	}
	return false
}

// operations maps the client method names that show which S3 request was
// throttled to the S3 API operation. Only these names are reported, so the
// operation tag's values form a small fixed set.
var operations = map[string]string{
	// AWS SDK for Java v1 (AmazonS3Client.<method>) and v2 (DefaultS3Client.<method>).
	"putObject":               "PutObject",
	"getObject":               "GetObject",
	"getObjectMetadata":       "HeadObject",
	"headObject":              "HeadObject",
	"listObjects":             "ListObjects",
	"listObjectsV2":           "ListObjectsV2",
	"listNextBatchOfObjects":  "ListObjects",
	"deleteObject":            "DeleteObject",
	"deleteObjects":           "DeleteObjects",
	"copyObject":              "CopyObject",
	"copyPart":                "UploadPartCopy",
	"uploadPartCopy":          "UploadPartCopy",
	"initiateMultipartUpload": "CreateMultipartUpload",
	"createMultipartUpload":   "CreateMultipartUpload",
	"uploadPart":              "UploadPart",
	"completeMultipartUpload": "CompleteMultipartUpload",
	"abortMultipartUpload":    "AbortMultipartUpload",
	"listMultipartUploads":    "ListMultipartUploads",
	"headBucket":              "HeadBucket",
	// SDK v1 request metrics (com.amazonaws.latency: RequestType=[…Request]).
	"PutObjectRequest":               "PutObject",
	"GetObjectRequest":               "GetObject",
	"GetObjectMetadataRequest":       "HeadObject",
	"ListObjectsRequest":             "ListObjects",
	"ListObjectsV2Request":           "ListObjectsV2",
	"DeleteObjectRequest":            "DeleteObject",
	"DeleteObjectsRequest":           "DeleteObjects",
	"CopyObjectRequest":              "CopyObject",
	"InitiateMultipartUploadRequest": "CreateMultipartUpload",
	"UploadPartRequest":              "UploadPart",
	"CompleteMultipartUploadRequest": "CompleteMultipartUpload",
	"AbortMultipartUploadRequest":    "AbortMultipartUpload",
}

// s3aOperations are the operation names S3A puts in front of " on s3a://".
var s3aOperations = map[string]string{
	"getFileStatus":            "getFileStatus",
	"open":                     "open",
	"create":                   "create",
	"delete":                   "delete",
	"rename":                   "rename",
	"listStatus":               "listStatus",
	"listFiles":                "listFiles",
	"copyFile":                 "copyFile",
	"innerMkdirs":              "innerMkdirs",
	"mkdirs":                   "mkdirs",
	"read":                     "read",
	"reopen":                   "reopen",
	"PUT":                      "PUT",
	"upload":                   "upload",
	"completeMultipartUpload":  "completeMultipartUpload",
	"initiate MultiPartUpload": "initiate MultiPartUpload",
	"deleteObjects":            "deleteObjects",
	"listObjects":              "listObjects",
}

var (
	litS3ClientV1   = []byte("AmazonS3Client.")
	litS3ClientV2   = []byte("DefaultS3Client.")
	litRequestType  = []byte("RequestType=[")
	litS3AOn        = []byte(" on s3a://")
	litThrottledSep = []byte("ThrottledException: ")
)

// extractOperation returns the throttled S3 operation shown in ev, or "".
// S3A names it in its message; otherwise the stack's innermost client frame
// does. Map lookups with string(b) keys do not allocate, and the results are
// the tables' constant strings.
func extractOperation(ev []byte) string {
	if i := bytes.Index(ev, litThrottledSep); i >= 0 {
		rest := ev[i+len(litThrottledSep):]
		if j := bytes.Index(rest, litS3AOn); j > 0 && j < 40 {
			if op, ok := s3aOperations[string(rest[:j])]; ok {
				return op
			}
		}
	}
	for _, lit := range [...][]byte{litS3ClientV1, litS3ClientV2} {
		for from := 0; ; {
			i := bytes.Index(ev[from:], lit)
			if i < 0 {
				break
			}
			from += i + len(lit)
			end := from
			for end < len(ev) && identByte(ev[end]) {
				end++
			}
			if end < len(ev) && ev[end] == '(' {
				if op, ok := operations[string(ev[from:end])]; ok {
					return op
				}
			}
		}
	}
	if i := bytes.Index(ev, litRequestType); i >= 0 {
		rest := ev[i+len(litRequestType):]
		if j := bytes.IndexByte(rest, ']'); j > 0 {
			if op, ok := operations[string(rest[:j])]; ok {
				return op
			}
		}
	}
	return ""
}

func identByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$'
}
