package logscan

import (
	"testing"
)

func TestDetectThrottle(t *testing.T) {
	for _, tc := range []struct {
		name, ev         string
		want             bool
		form, bucket, op string
	}{
		{
			name: "presto sdk v1 SlowDown (real test bed line)",
			ev: "2026-11-23 23:45:17,970 WARN  org.apache.flink.runtime.checkpoint.CheckpointsCleaner       [] - Could not properly discard completed checkpoint 6.\n" +
				"com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: 00000000000000B8; S3 Extended Request ID: testbed/dn2znstxvrx6; Proxy: null)\n" +
				"\tat com.amazonaws.services.s3.AmazonS3Client.invoke(AmazonS3Client.java:5403) ~[?:?]\n" +
				"\tat com.amazonaws.services.s3.AmazonS3Client.listObjects(AmazonS3Client.java:900) ~[?:?]\n",
			want: true, form: "sdk-v1", bucket: "", op: "ListObjects",
		},
		{
			name: "bodiless HEAD answer: Slow Down with 503 Slow Down code",
			ev:   "java.util.concurrent.CompletionException: com.amazonaws.services.s3.model.AmazonS3Exception: Slow Down (Service: Amazon S3; Status Code: 503; Error Code: 503 Slow Down; Request ID: 07; S3 Extended Request ID: x; Proxy: null)\n\tat com.amazonaws.services.s3.AmazonS3Client.getObjectMetadata(AmazonS3Client.java:1372) ~[?:?]",
			want: true, form: "sdk-v1", op: "HeadObject",
		},
		{
			name: "shaded presto prefix and s3p path",
			ev:   "java.io.IOException: Could not flush to s3p://ckpt-bucket/checkpoints/abc/chk-3/f1\nCaused by: org.apache.flink.fs.s3presto.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: A)\n\tat org.apache.flink.fs.s3presto.shaded.com.amazonaws.services.s3.AmazonS3Client.putObject(AmazonS3Client.java:1)",
			want: true, form: "sdk-v1", bucket: "ckpt-bucket", op: "PutObject",
		},
		{
			name: "S3A throttled with operation",
			ev:   "org.apache.hadoop.fs.s3a.AWSServiceThrottledException: getFileStatus on s3a://bucket-a/flink/chk-7/_metadata: com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: R), S3 Extended Request ID: E:SlowDown",
			want: true, form: "s3a", bucket: "bucket-a", op: "getFileStatus",
		},
		{
			name: "EMRFS",
			ev:   "com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: Slow Down (Service: Amazon S3; Status Code: 503; Error Code: 503 Slow Down; Request ID: FS3Z)",
			want: true, form: "emrfs",
		},
		{
			name: "SDK v2",
			ev:   "software.amazon.awssdk.services.s3.model.S3Exception: Please reduce your request rate. (Service: S3, Status Code: 503, Request ID: X, Extended Request ID: Y)\n\tat software.amazon.awssdk.services.s3.DefaultS3Client.putObject(DefaultS3Client.java:9326)\n at s3://data/x",
			want: true, form: "sdk-v2", bucket: "data", op: "PutObject",
		},
		{
			name: "HTTP 429 from an S3-compatible store",
			ev:   "software.amazon.awssdk.services.s3.model.S3Exception: null (Service: S3, Status Code: 429, Request ID: 1) writing s3://minio-ckpt/chk-1",
			want: true, form: "http-429", bucket: "minio-ckpt",
		},
		{
			name: "SDK v1 latency log line",
			ev:   "INFO  com.amazonaws.latency - ServiceName=[Amazon S3], AWSErrorCode=[SlowDown], StatusCode=[503], Exception=[com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate.], RequestType=[PutObjectRequest]",
			want: true, form: "sdk-v1", op: "PutObject",
		},
		{name: "301 redirect", ev: "com.amazonaws.services.s3.model.AmazonS3Exception: The bucket you are attempting to access must be addressed using the specified endpoint. (Service: Amazon S3; Status Code: 301; Error Code: PermanentRedirect) s3://b1/x"},
		{name: "403", ev: "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: X) s3a://b1/x"},
		{name: "pool timeout", ev: "com.amazonaws.SdkClientException: Unable to execute HTTP request: Timeout waiting for connection from pool s3://b1/x"},
		{name: "S3Guard DynamoDB throttling", ev: "org.apache.hadoop.fs.s3a.AWSServiceThrottledException: listFiles on s3a://bucket/10/d1: com.amazonaws.services.dynamodbv2.model.ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded. (Service: AmazonDynamoDBv2; Status Code: 400"},
		{name: "429 without S3", ev: "org.apache.kafka.common.errors.ThrottlingQuotaExceededException: Too Many Requests"},
		{name: "ordinary line", ev: "2024-12-03 02:18:06,996 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 1 for job 49b31281b82d6bf93a22e2e85b8ce806 (1680 bytes, checkpointDuration=362 ms, finalizationTime=0 ms)."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var th Throttle
			got := detectThrottle([]byte(tc.ev), &th)
			if got != tc.want {
				t.Fatalf("detectThrottle = %v, want %v", got, tc.want)
			}
			if !got {
				return
			}
			if th.Form != tc.form || string(th.Bucket) != tc.bucket || th.Operation != tc.op {
				t.Errorf("got form %q bucket %q op %q, want %q %q %q", th.Form, th.Bucket, th.Operation, tc.form, tc.bucket, tc.op)
			}
		})
	}
}

func TestExtractBucket(t *testing.T) {
	for in, want := range map[string]string{
		"to s3://my-bucket/_entropy_/chk":          "my-bucket",
		"s3a://b.with.dots/x":                      "b.with.dots",
		"path s3p://ckp/":                          "ckp",
		"'s3://quoted-bucket'":                     "quoted-bucket",
		"xs3://notscheme/a s3://real-one/b":        "real-one",
		"s3://ab/too-short then s3://good-one/":    "good-one",
		"hdfs://nn/x and http://host/bucket/key":   "",
		"s3://":                                    "",
		"s3n://legacy/x":                           "",
		"s3://Legacy_Bucket/key":                   "Legacy_Bucket",
		"s3://bucket-at-end":                       "bucket-at-end",
		"s3://bad*bucket/x":                        "",
		"S3://upper-scheme/x (not a Flink scheme)": "",
	} {
		if got := string(extractBucket([]byte(in))); got != want {
			t.Errorf("extractBucket(%q) = %q, want %q", in, got, want)
		}
	}
}
