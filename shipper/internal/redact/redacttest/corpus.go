// Package redacttest holds the redaction corpus shared by the redactor's
// own tests and the shipper's end-to-end test of what reaches Loki.
package redacttest

import (
	"regexp"

	"github.com/flink-agent/flink-agent/shipper/internal/redact"
)

// Header is a Flink log4j header; every corpus line starts with it.
const Header = "2024-05-01 12:00:00,123 INFO  org.apache.flink.configuration.GlobalConfiguration            [] - "

// Case is one event, its redacted form, and the rules that fire; a clean
// event (no Rules) must come out unchanged, counting nothing.
type Case struct {
	In, Want string
	Rules    []string // the first is the one the case is about
	User     bool     // needs UserRules
}

// clean is an event without secrets.
func clean(msg string) Case { return Case{In: Header + msg, Want: Header + msg} }

// secret is an event with secrets.
func secret(in, want string, rules ...string) Case {
	return Case{In: Header + in, Want: Header + want, Rules: rules}
}

// Corpus is every secret form the issues name, in the shapes Flink,
// Hadoop, Kafka, the AWS and Azure SDKs, HTTP client wire logs and JVM
// options print them, with the exact expected result and the rules that
// fire; then real Flink (and Kafka connector) lines that must stay as
// they are.
var Corpus = []Case{
	// AWS access key ids.
	secret("Using access key AKIAIOSFODNN7EXAMPLE for s3://bucket", "Using access key AKIA[REDACTED] for s3://bucket", "aws_access_key_id"),
	secret("credentials from STS: ASIAY34FZKBOKMUTVV7A expires 2024-05-01", "credentials from STS: ASIA[REDACTED] expires 2024-05-01", "aws_access_key_id"),
	// Flink's S3 filesystem options, as Flink logs its configuration, as
	// JVM system properties and as program arguments.
	secret("Loading configuration property: s3.access-key, AKIAIOSFODNN7EXAMPLE", "Loading configuration property: s3.access-key, [REDACTED]", "s3_access_key", "aws_access_key_id"),
	secret("Loading configuration property: s3.secret-key, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Loading configuration property: s3.secret-key, [REDACTED]", "s3_secret_key"),
	secret("s3.secret-key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "s3.secret-key: [REDACTED]", "s3_secret_key"),
	secret("s3.access.key=minioadmin s3.secret.key=minioadmin", "s3.access.key=[REDACTED] s3.secret.key=[REDACTED]", "s3_access_key", "s3_secret_key"),
	secret(`{"s3.access-key":"minio","s3.secret-key":"minio123"}`, `{"s3.access-key":"[REDACTED]","s3.secret-key":"[REDACTED]"}`, "s3_access_key", "s3_secret_key"),
	secret("JVM Options: -Xmx1g -Ds3.secret-key=wJalrXUtnFEMI/K7MDENG -Dlog.file=/opt/flink/log/x.log", "JVM Options: -Xmx1g -Ds3.secret-key=[REDACTED] -Dlog.file=/opt/flink/log/x.log", "s3_secret_key"),
	secret("Program Arguments: --s3.secret-key wJalrXUtnFEMI/K7MDENG --job-id 42", "Program Arguments: --s3.secret-key [REDACTED] --job-id 42", "s3_secret_key"),
	secret("S3.SECRET-KEY = Upper/Case+Secret", "S3.SECRET-KEY = [REDACTED]", "s3_secret_key"),
	// Hadoop S3A, global, per bucket, as -D and in Hadoop's XML.
	secret("fs.s3a.secret.key=s3cr3t fs.s3a.access.key=minio", "fs.s3a.secret.key=[REDACTED] fs.s3a.access.key=minio", "s3a_secret_key"),
	secret("Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, s3cr3t", "Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, [REDACTED]", "s3a_secret_key"),
	secret("JVM Options: -Dfs.s3a.secret.key=s3cr3t -Xss1m", "JVM Options: -Dfs.s3a.secret.key=[REDACTED] -Xss1m", "s3a_secret_key"),
	secret("core-site: <property><name>fs.s3a.secret.key</name><value>s3cr3t/x+y</value></property>", "core-site: <property><name>fs.s3a.secret.key</name><value>[REDACTED]</value></property>", "s3a_secret_key"),
	secret("core-site.xml:\n  <property>\n    <name>fs.s3a.secret.key</name>\n    <value>s3cr3t</value>\n  </property>", "core-site.xml:\n  <property>\n    <name>fs.s3a.secret.key</name>\n    <value>[REDACTED]</value>\n  </property>", "s3a_secret_key"),
	secret("fs.s3a.session.token=FwoGZXIvYXdzEJr//////////wEaDM", "fs.s3a.session.token=[REDACTED]", "token"),
	// The AWS CLI / SDK credentials file, environment, JSON and Java
	// system properties.
	secret("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED]", "aws_secret_access_key"),
	secret("env: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "env: AWS_SECRET_ACCESS_KEY=[REDACTED]", "aws_secret_access_key"),
	secret(`assumed role: {"Credentials":{"AccessKeyId":"ASIAY34FZKBOKMUTVV7A","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG","SessionToken":"FwoGZXIvYXdzEJr","Expiration":"2024-05-01T13:00:00Z"}}`,
		`assumed role: {"Credentials":{"AccessKeyId":"ASIA[REDACTED]","SecretAccessKey":"[REDACTED]","SessionToken":"[REDACTED]","Expiration":"2024-05-01T13:00:00Z"}}`, "aws_secret_access_key", "aws_access_key_id", "token"),
	secret("credentials provider returned secretAccessKey: wJalrXUtnFEMI/K7MDENG", "credentials provider returned secretAccessKey: [REDACTED]", "aws_secret_access_key"),
	secret("aws_session_token = FwoGZXIvYXdzEJr//////////wEaDM+x", "aws_session_token = [REDACTED]", "token"),
	secret("env: AWS_SESSION_TOKEN=FwoGZXIvYXdzEJr", "env: AWS_SESSION_TOKEN=[REDACTED]", "token"),
	secret("JVM Options: -Daws.accessKeyId=AKIAIOSFODNN7EXAMPLE -Daws.secretKey=wJalrXUtnFEMI -Daws.sessionToken=FwoGZX", "JVM Options: -Daws.accessKeyId=AKIA[REDACTED] -Daws.secretKey=[REDACTED] -Daws.sessionToken=[REDACTED]", "secret", "aws_access_key_id", "token"),
	// Azure storage.
	secret("Loading configuration property: fs.azure.account.key.myaccount.dfs.core.windows.net, abc+def/ghi==", "Loading configuration property: fs.azure.account.key.myaccount.dfs.core.windows.net, [REDACTED]", "azure_account_key"),
	secret("fs.azure.account.key.myaccount.blob.core.windows.net: abc+def/ghi==", "fs.azure.account.key.myaccount.blob.core.windows.net: [REDACTED]", "azure_account_key"),
	secret("connecting: DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=abc+def/ghi==;EndpointSuffix=core.windows.net", "connecting: DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=[REDACTED];EndpointSuffix=core.windows.net", "azure_account_key"),
	secret("event hub: Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc+def=", "event hub: Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=[REDACTED]", "azure_account_key"),
	secret("GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&se=2024-06-01&sig=abcDEF%2B123%3D HTTP/1.1", "GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&se=2024-06-01&sig=[REDACTED] HTTP/1.1", "signature"),
	// Passwords.
	secret("connecting with password=hunter2 to db", "connecting with password=[REDACTED] to db", "password"),
	secret("Password: hunter2", "Password: [REDACTED]", "password"),
	secret("PASSWORD=hunter2 PassWord: hunter3", "PASSWORD=[REDACTED] PassWord: [REDACTED]", "password"),
	secret(`{"user":"flink","password":"hunter2"}`, `{"user":"flink","password":"[REDACTED]"}`, "password"),
	secret(`payload {\"user\":\"flink\",\"password\":\"hunter2\"}`, `payload {\"user\":\"flink\",\"password\":\"[REDACTED]\"}`, "password"),
	secret(`db config password="hunter 2, with spaces" ok`, `db config password="[REDACTED]" ok`, "password"),
	secret("Loading configuration property: security.ssl.internal.keystore-password, hunter2", "Loading configuration property: security.ssl.internal.keystore-password, [REDACTED]", "password"),
	secret("JVM Options: -Djavax.net.ssl.trustStorePassword=changeit -Xmx1g", "JVM Options: -Djavax.net.ssl.trustStorePassword=[REDACTED] -Xmx1g", "password"),
	secret("sasl.jaas.config passwd=topsecret;", "sasl.jaas.config passwd=[REDACTED];", "password"),
	secret(`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="flink" password="s3cr3t";`, `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="flink" password="[REDACTED]";`, "password"),
	secret("POST /login body: user%3Dflink%26password%3Dhunter2%26remember%3D1", "POST /login body: user%3Dflink%26password%3D[REDACTED]%26remember%3D1", "password"),
	secret("Program Arguments: --password hunter2 --user flink", "Program Arguments: --password [REDACTED] --user flink", "password"),
	secret("datasource: <password>hunter2</password>", "datasource: <password>[REDACTED]</password>", "password"),
	// Secrets, tokens and API keys under any key.
	secret("oauth: client.secret=4f2e1c9a-secret client.id=flink", "oauth: client.secret=[REDACTED] client.id=flink", "secret"),
	secret(`token request {"client_id":"flink","client_secret":"abc123"}`, `token request {"client_id":"flink","client_secret":"[REDACTED]"}`, "secret"),
	secret("Loading configuration property: fs.azure.account.oauth2.client.secret, abc123", "Loading configuration property: fs.azure.account.oauth2.client.secret, [REDACTED]", "secret"),
	secret("OIDC clientSecret: abc123", "OIDC clientSecret: [REDACTED]", "secret"),
	secret("GET https://api.example.com/v1/data?token=abc123&page=2", "GET https://api.example.com/v1/data?token=[REDACTED]&page=2", "token"),
	secret(`auth response {"access_token":"abc.def.ghi","token_type":"Bearer","refresh_token":"xyz"}`, `auth response {"access_token":"[REDACTED]","token_type":"Bearer","refresh_token":"[REDACTED]"}`, "token"),
	secret("metrics reporter api_key=0123456789abcdef0123456789abcdef", "metrics reporter api_key=[REDACTED]", "api_key"),
	secret("request headers: X-Api-Key: abc123def456", "request headers: X-Api-Key: [REDACTED]", "api_key"),
	secret("env: DD_API_KEY=0123456789abcdef apiKey: xyz", "env: DD_API_KEY=[REDACTED] apiKey: [REDACTED]", "api_key"),
	// HTTP credentials: bearer tokens, Basic, proxies, SigV4.
	secret("request headers: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbGluayJ9.c2lnbmF0dXJl", "request headers: Authorization: Bearer [REDACTED]", "bearer_token"),
	secret("authorization=bearer abc.def-ghi_jkl", "authorization=bearer [REDACTED]", "bearer_token"),
	secret("http-outgoing-0 >> Authorization: Basic Zmxpbms6aHVudGVyMg==", "http-outgoing-0 >> Authorization: Basic [REDACTED]", "authorization"),
	secret("http-outgoing-1 >> Proxy-Authorization: Basic cHJveHk6c2VjcmV0", "http-outgoing-1 >> Proxy-Authorization: Basic [REDACTED]", "authorization"),
	secret("request headers {Authorization=[Basic Zmxpbms6aHVudGVy], Accept=[*/*]}", "request headers {Authorization=[Basic [REDACTED]], Accept=[*/*]}", "authorization"),
	secret("http-outgoing-2 >> Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240501/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
		"http-outgoing-2 >> Authorization: AWS4-HMAC-SHA256 [REDACTED], SignedHeaders=host;x-amz-date, Signature=[REDACTED]", "authorization", "aws_access_key_id", "signature"),
	secret("presigned: https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAY34FZKBOKMUTVV7A%2F20240501%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=FwoGZX%2B&X-Amz-Signature=0a1b2c3d4e5f",
		"presigned: https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA[REDACTED]%2F20240501%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=[REDACTED]&X-Amz-Signature=[REDACTED]", "signature", "aws_access_key_id", "token"),
	// Credentials in URLs.
	secret("Opening jdbc:postgresql://flink:hunter2@db:5432/app", "Opening jdbc:postgresql://flink:[REDACTED]@db:5432/app", "url_password"),
	secret("cache at redis://:hunter2@redis:6379/0", "cache at redis://:[REDACTED]@redis:6379/0", "url_password"),
	// Tokens recognised by their form.
	secret("cloning with ghp_16C7e42F292c6912E7710c838347Ae178B4a done", "cloning with ghp_[REDACTED] done", "github_token"),
	secret("GITHUB_TOKEN github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzAB", "GITHUB_TOKEN github_pat_[REDACTED]", "github_token"),
	secret("registry login glpat-abcdefghij0123456789 ok", "registry login glpat-[REDACTED] ok", "gitlab_token"),
	secret("alert webhook xoxb-123456789012-abcdefghijkl ready", "alert webhook xoxb-[REDACTED] ready", "slack_token"),
	secret("maps client AIzaSyA-1234567890abcdefghijklmnopqrstu ok", "maps client AIza[REDACTED] ok", "google_api_key"),
	secret("id token issued eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U for flink", "id token issued [REDACTED] for flink", "jwt"),
	// PEM private keys: whole, cut off by the event size cap, and in a
	// JSON service account key.
	{In: Header + "loaded key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nabcdef==\n-----END RSA PRIVATE KEY-----\nnext",
		Want: Header + "loaded key\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nnext", Rules: []string{"private_key"}},
	{In: Header + "loaded key\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
		Want: Header + "loaded key\n-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----", Rules: []string{"private_key"}},
	secret(`service account {"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----\n","client_email":"x@y.iam.gserviceaccount.com"}`,
		`service account {"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----\n","client_email":"x@y.iam.gserviceaccount.com"}`, "private_key"),
	// A user rule.
	{In: Header + "order placed by customer=C-12345 ok", Want: Header + "order placed by customer=<hidden> ok", Rules: []string{"customer_id"}, User: true},

	// Clean lines: secrets Flink and Kafka masked, words that look like
	// triggers, Flink's delegation token framework, an S3 signature error.
	clean("Loading configuration property: s3.secret-key, ******"),
	clean("Loading configuration property: security.ssl.internal.keystore-password, ******"),
	clean("Loading configuration property: fs.azure.account.key.myaccount.dfs.core.windows.net, ******"),
	clean("Loading configuration property: security.delegation.tokens.enabled, false"),
	clean("Loading configuration property: fs.s3a.access.key, minio"),
	clean("Password authentication failed for user flink"),
	clean("Remoting started; listening on addresses :[pekko.tcp://flink@127.0.0.1:6123]"),
	clean("Loading delegation token providers"),
	clean("Delegation token provider hadoopfs loaded and initialized"),
	clean("Delegation token provider s3-hadoop is disabled so not loaded"),
	clean("Delegation token providers loaded successfully"),
	clean("Checking provider and receiver instances consistency"),
	clean("Provider and receiver instances are consistent"),
	clean("Error Code: SignatureDoesNotMatch; The request signature we calculated does not match the signature you provided."),
	clean(`Error creating: pods "flink-tm-1" is forbidden: secret "s3-credentials" not found`),
	clean("Rest endpoint listening at flink-jobmanager:8081, authorization disabled"),
	clean("Keyed state backend: HeapKeyedStateBackend with key groups 0-127; password protected stores: none"),
	clean("ConsumerConfig values: \n\tallow.auto.create.topics = true\n\tbootstrap.servers = [kafka:9092]\n\tsasl.jaas.config = [hidden]\n\tsasl.oauthbearer.token.endpoint.url = null\n\tsecurity.protocol = PLAINTEXT\n\tssl.key.password = null\n\tssl.keystore.password = null\n\tssl.truststore.password = null"),
	clean("Set up a password-less keystore at /opt/flink/keystore.jks"),
	clean("Using ${S3_SECRET} placeholders: s3.secret-key: ${S3_SECRET_KEY}"),
}

// UserRules are the user rules the corpus's User case needs.
var UserRules = []redact.Rule{{Name: "customer_id", Regex: regexp.MustCompile(`customer=[A-Z0-9-]+`), Replacement: "customer=<hidden>"}}
