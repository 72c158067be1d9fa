// Package redacttest holds the redaction corpus shared by the redactor's
// own tests and the shipper's end-to-end test of what reaches Loki.
package redacttest

import (
	"regexp"

	"github.com/flink-agent/flink-agent/shipper/internal/redact"
)

// Header is a Flink log4j header; every corpus line starts with it.
const Header = "2024-05-01 12:00:00,123 INFO  org.apache.flink.configuration.GlobalConfiguration            [] - "

// Case is one event, its redacted form, and the rules that fire.
type Case struct {
	In, Want string
	Rules    []string // the first is the one the case is about
}

// Corpus is every secret form the issue names, in the shapes Flink,
// Hadoop, the AWS SDK and JVM options print them, with the exact expected
// result and the rules that fire. The last case needs UserRules.
var Corpus = []Case{
	// AWS access key ids.
	{Header + "Using access key AKIAIOSFODNN7EXAMPLE for s3://bucket", Header + "Using access key AKIA[REDACTED] for s3://bucket", []string{"aws_access_key_id"}},
	{Header + "credentials from STS: ASIAY34FZKBOKMUTVV7A expires 2024-05-01", Header + "credentials from STS: ASIA[REDACTED] expires 2024-05-01", []string{"aws_access_key_id"}},
	// Flink's S3 filesystem options, as Flink logs its configuration.
	{Header + "Loading configuration property: s3.access-key, AKIAIOSFODNN7EXAMPLE", Header + "Loading configuration property: s3.access-key, [REDACTED]", []string{"s3_access_key"}},
	{Header + "Loading configuration property: s3.secret-key, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Header + "Loading configuration property: s3.secret-key, [REDACTED]", []string{"s3_secret_key"}},
	{Header + "s3.secret-key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Header + "s3.secret-key: [REDACTED]", []string{"s3_secret_key"}},
	{Header + "s3.access.key=minioadmin s3.secret.key=minioadmin", Header + "s3.access.key=[REDACTED] s3.secret.key=[REDACTED]", []string{"s3_access_key", "s3_secret_key"}},
	{Header + `{"s3.access-key":"minio","s3.secret-key":"minio123"}`, Header + `{"s3.access-key":"[REDACTED]","s3.secret-key":"[REDACTED]"}`, []string{"s3_access_key", "s3_secret_key"}},
	// Hadoop S3A, global and per bucket.
	{Header + "fs.s3a.secret.key=s3cr3t fs.s3a.access.key=minio", Header + "fs.s3a.secret.key=[REDACTED] fs.s3a.access.key=minio", []string{"s3a_secret_key"}},
	{Header + "Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, s3cr3t", Header + "Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, [REDACTED]", []string{"s3a_secret_key"}},
	// The AWS CLI / SDK credentials file and environment.
	{Header + "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Header + "aws_secret_access_key = [REDACTED]", []string{"aws_secret_access_key"}},
	{Header + "env: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", Header + "env: AWS_SECRET_ACCESS_KEY=[REDACTED]", []string{"aws_secret_access_key"}},
	// Passwords.
	{Header + "connecting with password=hunter2 to db", Header + "connecting with password=[REDACTED] to db", []string{"password"}},
	{Header + "Password: hunter2", Header + "Password: [REDACTED]", []string{"password"}},
	{Header + `{"user":"flink","password":"hunter2"}`, Header + `{"user":"flink","password":"[REDACTED]"}`, []string{"password"}},
	{Header + "Loading configuration property: security.ssl.internal.keystore-password, hunter2", Header + "Loading configuration property: security.ssl.internal.keystore-password, [REDACTED]", []string{"password"}},
	{Header + "JVM Options: -Djavax.net.ssl.trustStorePassword=changeit -Xmx1g", Header + "JVM Options: -Djavax.net.ssl.trustStorePassword=[REDACTED] -Xmx1g", []string{"password"}},
	{Header + "sasl.jaas.config passwd=topsecret;", Header + "sasl.jaas.config passwd=[REDACTED];", []string{"password"}},
	// Bearer tokens.
	{Header + "request headers: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbGluayJ9.c2lnbmF0dXJl", Header + "request headers: Authorization: Bearer [REDACTED]", []string{"bearer_token"}},
	{Header + "authorization=bearer abc.def-ghi_jkl", Header + "authorization=bearer [REDACTED]", []string{"bearer_token"}},
	// Credentials in URLs.
	{Header + "Opening jdbc:postgresql://flink:hunter2@db:5432/app", Header + "Opening jdbc:postgresql://flink:[REDACTED]@db:5432/app", []string{"url_password"}},
	// PEM private keys: whole, and cut off by the event size cap.
	{Header + "loaded key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nabcdef==\n-----END RSA PRIVATE KEY-----\nnext",
		Header + "loaded key\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nnext", []string{"private_key"}},
	{Header + "loaded key\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
		Header + "loaded key\n-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----", []string{"private_key"}},
	// A user rule.
	{Header + "kafka token=abc123def ok", Header + "kafka token=<hidden> ok", []string{"kafka_token"}},
}

// UserRules are the user rules the corpus's last case needs.
var UserRules = []redact.Rule{{Name: "kafka_token", Regex: regexp.MustCompile(`token=[a-z0-9]+`), Replacement: "token=<hidden>"}}
