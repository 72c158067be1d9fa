package chaos

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// cases are run in this order.
var cases = []chaosCase{
	{"redaction: 40 secret forms", caseRedaction},
	{"credentials in the agent's own log", caseOwnLog},
	{"symlink to /etc/shadow and to credentials", caseSymlinkOutside},
	{"symlink flipped file/FIFO every 7 ms", caseSymlinkFIFO},
	{"5,000 files", caseThousandsOfFiles},
	{"20 truncates, 20 delete/recreates", caseTruncateRecreate},
	{"renamed out of the glob 4 s and back", caseRenamedOutAndBack},
	{"one file under three names", caseTwoPaths},
	{"unreadable file", caseUnreadable},
	{"REST: 200 MB answer", caseHugeAnswer},
	{"REST: gzip bomb (1 GiB inflated)", caseGzipBomb},
	{"REST: counts.failed = MinInt64", caseCounterMinInt64},
	{"REST: 10,000 running jobs", caseManyJobs},
	{"REST: 1 MB job names", caseLongNames},
	{"check-config: run-time breakers", caseCheckConfig},
}

// secretForms are the forms a tester tried (the eleven the old rules
// missed first), each with the part that must never reach Loki.
var secretForms = []struct{ line, secret string }{
	{"JVM Options: -Ds3.secret-key=chaosS3secret01 -Xmx1g", "chaosS3secret01"},
	{"JVM Options: -Dfs.s3a.secret.key=chaosS3Asecret02 -Xss1m", "chaosS3Asecret02"},
	{"Program Arguments: --s3.secret-key chaosCliSecret03 --job x", "chaosCliSecret03"},
	{"core-site: <property><name>fs.s3a.secret.key</name><value>chaosXmlSecret04</value></property>", "chaosXmlSecret04"},
	{`credentials {"AccessKeyId":"ASIACHAOSCHAOS05WXYZ","SecretAccessKey":"chaosJsonSecret05"}`, "chaosJsonSecret05"},
	{`sdk config {"secretAccessKey":"chaosJsonSecret06"}`, "chaosJsonSecret06"},
	{"http-outgoing-0 >> Authorization: Basic Y2hhb3M6YmFzaWMwNw==", "Y2hhb3M6YmFzaWMwNw=="},
	{"http-outgoing-1 >> Proxy-Authorization: Basic Y2hhb3M6cHJveHkwOA==", "Y2hhb3M6cHJveHkwOA=="},
	{"aws_session_token = chaosSessionToken09", "chaosSessionToken09"},
	{"Loading configuration property: fs.azure.account.key.acct.dfs.core.windows.net, chaosAzureKey10==", "chaosAzureKey10=="},
	{"POST /login body: user%3Dflink%26password%3DchaosUrlEncoded11%26x%3D1", "chaosUrlEncoded11"},
	{"Authorization: AWS4-HMAC-SHA256 Credential=AKIACHAOSCHAOS12WXYZ/20240501/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=c0ffee12c0ffee12", "c0ffee12c0ffee12"},
	{"cloning with ghp_chaosGitHubToken13chaosGitHubToken13xx", "chaosGitHubToken13"},
	{"oauth client.secret=chaosClientSecret14", "chaosClientSecret14"},
	{"metrics api_key=chaosApiKey15", "chaosApiKey15"},
	// The forms the old rules already knew.
	{"Using access key AKIACHAOSCHAOS16WXYZ for s3://bucket", "CHAOSCHAOS16WXYZ"},
	{"Loading configuration property: s3.access-key, chaosAccess17", "chaosAccess17"},
	{"Loading configuration property: s3.secret-key, chaosSecret18", "chaosSecret18"},
	{"s3.secret-key: chaosSecret19", "chaosSecret19"},
	{`{"s3.access-key":"chaosAccess20","s3.secret-key":"chaosSecret20"}`, "chaosSecret20"},
	{"fs.s3a.secret.key=chaosS3A21", "chaosS3A21"},
	{"Loading configuration property: fs.s3a.bucket.prod.secret.key, chaosS3A22", "chaosS3A22"},
	{"aws_secret_access_key = chaosAwsSecret23", "chaosAwsSecret23"},
	{"env: AWS_SECRET_ACCESS_KEY=chaosAwsSecret24", "chaosAwsSecret24"},
	{"connecting with password=chaosPassword25 to db", "chaosPassword25"},
	{"Password: chaosPassword26", "chaosPassword26"},
	{`{"user":"flink","password":"chaosPassword27"}`, "chaosPassword27"},
	{"Loading configuration property: security.ssl.internal.keystore-password, chaosPassword28", "chaosPassword28"},
	{"JVM Options: -Djavax.net.ssl.trustStorePassword=chaosPassword29", "chaosPassword29"},
	{"sasl.jaas.config passwd=chaosPassword30;", "chaosPassword30"},
	{"request headers: Authorization: Bearer chaosBearer31.abc.def", "chaosBearer31"},
	{"Opening jdbc:postgresql://flink:chaosUrlPass32@db:5432/app", "chaosUrlPass32"},
	// More of each kind.
	{"PASSWORD=chaosPassword33 PassWord: chaosPassword33b", "chaosPassword33"},
	{"GET https://api.example.com/v1?token=chaosToken34&page=2", "chaosToken34"},
	{"X-Amz-Security-Token=chaosSecurityToken35&X-Amz-Signature=chaos35sig", "chaos35sig"},
	{"GET https://acct.blob.core.windows.net/c?sv=1&sig=chaosSas36%2B&sp=r", "chaosSas36"},
	{"AccountKey=chaosAzureConn37==;EndpointSuffix=core.windows.net", "chaosAzureConn37"},
	{"alert webhook xoxb-1234567890-chaosSlack38", "chaosSlack38"},
	{"request headers: X-Api-Key: chaosApiKey39", "chaosApiKey39"},
	{"id token eyJhbGciOiJIUzI1NiJ9.eyJjaGFvcyI6IjQwIn0.chaosJwtSignature40", "chaosJwtSignature40"},
}

// caseRedaction: every form is shipped (the event is not dropped) and no
// secret reaches Loki; a PEM key and a Hadoop XML property spanning lines
// too.
func caseRedaction(e *env, r *result) {
	const name = "redaction"
	dir := filepath.Join(e.dir, name)
	mkdir(e, filepath.Join(dir, "log"))
	a := e.startAgent(name, dir, e.baseConfig(name, dir))
	w := newWriter()
	path := filepath.Join(dir, "log", "flink--taskexecutor-0-secrets.log")
	var msgs []string
	for i, f := range secretForms {
		msgs = append(msgs, fmt.Sprintf("chaosid=form%02d %s", i+1, f.line))
	}
	msgs = append(msgs, "chaosid=pem loaded key\n-----BEGIN RSA PRIVATE KEY-----\nchaosPemBody41\n-----END RSA PRIVATE KEY-----",
		"chaosid=xml core-site.xml:\n  <property>\n    <name>fs.s3a.secret.key</name>\n    <value>chaosXmlLines42</value>\n  </property>")
	w.write(e.t, path, msgs...)
	w.canary(e.t, dir, name, 50)
	got := e.deliveries(name, w, r, 20*time.Second)
	secrets := []string{"chaosPemBody41", "chaosXmlLines42"}
	for _, f := range secretForms {
		secrets = append(secrets, f.secret)
	}
	redacted := 0
	for _, en := range got {
		for _, s := range secrets {
			if strings.Contains(en.Line, s) {
				r.fail("%q reached Loki: %q", s, en.Line)
			}
		}
		if strings.Contains(en.Line, "[REDACTED]") {
			redacted++
		}
	}
	r.check(redacted == len(secretForms)+2, "%d of %d secret events show [REDACTED]", redacted, len(secretForms)+2)
	counted := a.metric("flink_agent_redactions_total")
	r.check(counted >= float64(len(secretForms)+2), "flink_agent_redactions_total %v", counted)
	a.stop(r)
}

// caseOwnLog: credentials in the Flink REST URL (user info, ?token=), in
// loki.url, and a Loki header; Flink answers 500 and Loki is unreachable
// for the first seconds (a gate in front of it answers 503), so both URLs
// and net/http's errors get logged. Nothing secret may show in what the
// agent prints, and the canary still arrives once Loki is back.
func caseOwnLog(e *env, r *result) {
	const name = "own-log"
	dir := filepath.Join(e.dir, name)
	mkdir(e, filepath.Join(dir, "log"))
	flink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"errors":["Internal server error."]}`, http.StatusInternalServerError)
	}))
	defer flink.Close()
	lokiURL, _ := url.Parse(e.loki.URL())
	var open atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(lokiURL)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !open.Load() {
			http.Error(w, "Loki is starting", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	defer gate.Close()
	rest := strings.Replace(flink.URL, "http://", "http://flink:chaosRestPass@", 1) + "/?token=chaosRestToken"
	push := strings.Replace(gate.URL, "http://", "http://tenant:chaosLokiPass@", 1) + "/?token=chaosLokiToken"
	cfg := strings.Replace(e.baseConfig(name, dir), `rest_url: ""`, fmt.Sprintf("rest_url: %q\n  scrape_interval: 2s", rest), 1)
	cfg = strings.Replace(cfg, fmt.Sprintf("url: %q", e.loki.URL()), fmt.Sprintf("url: %q\n  headers: {X-Chaos-Secret: chaosHeaderValue}\n  min_backoff: 200ms\n  max_backoff: 1s", push), 1)
	cfg = strings.Replace(cfg, "level: "+logLevel(), "level: debug", 1)
	a := e.startAgent(name, dir, cfg)
	w := newWriter()
	w.canary(e.t, dir, name, 100) // 2 s, Loki refusing
	open.Store(true)
	w.canary(e.t, dir, name+"-after", 25)
	e.deliveries(name, w, r, 20*time.Second)
	out := a.stop(r)
	for _, s := range []string{"chaosRestPass", "chaosRestToken", "chaosLokiPass", "chaosLokiToken", "chaosHeaderValue"} {
		if strings.Contains(out, s) {
			r.fail("the agent logged %q: %q", s, grep(out, s))
		}
	}
	r.check(strings.Contains(out, "flink:xxxxx@") && strings.Contains(out, "token=xxxxx"), "the URLs were not logged (masked) at all")
	r.check(strings.Contains(out, `condition=ended`), "the Loki push failure's end was not logged")
}

func mkdir(e *env, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
}
