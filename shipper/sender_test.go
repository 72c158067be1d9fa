package shipper

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// faultyLoki answers pushes from a script (fault injection: the real
// Loki cannot be made to answer 429 or 400 on demand), and records them.
type faultyLoki struct {
	mu      sync.Mutex
	script  []func(w http.ResponseWriter) // one per request; afterwards 204
	reqs    []*http.Request
	times   []time.Time
	entries int
}

func (f *faultyLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	f.times = append(f.times, time.Now())
	if len(f.script) > 0 {
		step := f.script[0]
		f.script = f.script[1:]
		step(w)
		return
	}
	raw, err := snappy.Decode(nil, body)
	var pr push.PushRequest
	if err == nil {
		err = pr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, s := range pr.Streams {
		f.entries += len(s.Entries)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *faultyLoki) snapshot() ([]*http.Request, []time.Time, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...), append([]time.Time(nil), f.times...), f.entries
}

func status(code int, body string, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func writeEvents(t *testing.T, path string, n int) {
	g := flinklog.Gen{Start: time.Now().Add(-time.Minute), Step: time.Millisecond}
	var b []byte
	for i := 0; i < n; i++ {
		b = g.Append(b)
	}
	appendFile(t, path, b)
}

// TestPushRetries: 429 with Retry-After, a 500 and a network-level failure
// are retried, in order, until Loki acknowledges; the wait honours
// Retry-After; nothing is lost or sent twice.
func TestPushRetries(t *testing.T) {
	fl := &faultyLoki{script: []func(http.ResponseWriter){
		status(http.StatusTooManyRequests, "ingestion rate limit exceeded", "Retry-After", "1"),
		status(http.StatusInternalServerError, "empty ring"),
		func(w http.ResponseWriter) { // hang up without an answer
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
		},
	}}
	srv := httptest.NewServer(fl)
	defer srv.Close()
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Loki.URL = srv.URL
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	var firstAcks atomic.Int32 // OnFirstAck: once, after the success only
	opts.OnFirstAck = func() {
		if _, _, n := fl.snapshot(); n != 50 {
			t.Errorf("OnFirstAck before Loki held the batch (%d entries)", n)
		}
		firstAcks.Add(1)
	}
	writeEvents(t, filepath.Join(dir, "a.log"), 50)
	r := start(t, opts)
	// Loki holds the entries before the sender has read its answer: wait
	// for the sender's count of the success too.
	eventually(t, 15*time.Second, "50 entries acknowledged", func() bool {
		_, _, n := fl.snapshot()
		return n == 50 && testutil.ToFloat64(r.s.m.sent) == 50
	})
	reqs, times, _ := fl.snapshot()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (3 failures, 1 success)", len(reqs))
	}
	if d := times[1].Sub(times[0]); d < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", d)
	}
	if got := testutil.ToFloat64(r.s.m.batches.WithLabelValues(resultRetry)); got != 3 {
		t.Errorf("batches{result=retry} = %v", got)
	}
	if got := testutil.ToFloat64(r.s.m.batches.WithLabelValues(resultSuccess)); got != 1 {
		t.Errorf("batches{result=success} = %v", got)
	}
	if got := testutil.ToFloat64(r.s.m.sent); got != 50 {
		t.Errorf("entries_sent = %v", got)
	}
	writeEvents(t, filepath.Join(dir, "b.log"), 10)
	eventually(t, 15*time.Second, "60 entries acknowledged", func() bool { return testutil.ToFloat64(r.s.m.sent) == 60 })
	if n := firstAcks.Load(); n != 1 {
		t.Errorf("OnFirstAck called %d times, want once", n)
	}
}

// TestPushRejected: a 400 is permanent. The entries Loki says it ignored
// are counted by reason, the positions move past the batch, and the next
// batch is sent.
func TestPushRejected(t *testing.T) {
	body := "entry for stream '{filename=\"a.log\"}' has timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable timestamp is: 2024-01-01T00:00:00Z\n" +
		"user 'fake', total ignored: 20 out of 30 for stream: {filename=\"a.log\"}"
	fl := &faultyLoki{script: []func(http.ResponseWriter){status(http.StatusBadRequest, body)}}
	srv := httptest.NewServer(fl)
	defer srv.Close()
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Loki.URL = srv.URL
	path := filepath.Join(dir, "a.log")
	writeEvents(t, path, 30)
	r := start(t, opts)
	eventually(t, 5*time.Second, "the rejected batch acknowledged", func() bool {
		return testutil.ToFloat64(r.s.m.rejected.WithLabelValues("too_old")) == 20
	})
	writeEvents(t, path, 5)
	eventually(t, 5*time.Second, "the next batch delivered", func() bool { _, _, n := fl.snapshot(); return n == 5 })
	if got := testutil.ToFloat64(r.s.m.batches.WithLabelValues(resultRejected)); got != 1 {
		t.Errorf("batches{result=rejected} = %v", got)
	}
	r.stop(t)
	fi, _ := os.Stat(path)
	entries, _, err := positions.Load(opts.Logs.PositionsFile)
	if err != nil || len(entries) != 1 || entries[0].Offset != fi.Size() {
		t.Errorf("positions %+v (err %v), want offset %d", entries, err, fi.Size())
	}
}

// TestPushHeadersAndAuth: tenant, custom headers, basic auth and bearer
// tokens read from files, the base URL completed with the push path.
func TestPushHeadersAndAuth(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	tok := filepath.Join(dir, "token")
	for f, content := range map[string]string{pw: "s3cr3t\n", tok: "tok-123\n"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		set   func(*config.Loki)
		authz string
	}{
		{"basic", func(l *config.Loki) { l.BasicAuth = config.BasicAuth{Username: "flink", PasswordFile: pw} }, "Basic Zmxpbms6czNjcjN0"},
		{"bearer", func(l *config.Loki) { l.BearerTokenFile = tok }, "Bearer tok-123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := &faultyLoki{}
			srv := httptest.NewServer(fl)
			defer srv.Close()
			logs := t.TempDir()
			opts := testOptions(t, logs)
			opts.Loki.URL = srv.URL
			opts.Loki.TenantID = "team-a"
			opts.Loki.Headers = map[string]string{"X-Custom": "yes"}
			tc.set(&opts.Loki)
			writeEvents(t, filepath.Join(logs, "a.log"), 3)
			start(t, opts)
			eventually(t, 5*time.Second, "a push", func() bool { _, _, n := fl.snapshot(); return n == 3 })
			reqs, _, _ := fl.snapshot()
			h := reqs[0].Header
			if reqs[0].URL.Path != "/loki/api/v1/push" || h.Get("X-Scope-OrgID") != "team-a" || h.Get("X-Custom") != "yes" ||
				h.Get("Authorization") != tc.authz || h.Get("Content-Type") != "application/x-protobuf" {
				t.Errorf("request %s %v", reqs[0].URL.Path, h)
			}
		})
	}
}

// TestNewFailsFast: bad settings are startup errors, not push failures:
// those a configuration file can have fail its validation, those of the
// filesystem fail New.
func TestNewFailsFast(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Options){
		"positions dir": func(o *Options) { o.Logs.PositionsFile = filepath.Join(notDir, "positions.json") },
		"password file": func(o *Options) {
			o.Loki.BasicAuth = config.BasicAuth{Username: "u", PasswordFile: filepath.Join(dir, "missing")}
		},
		"token file":         func(o *Options) { o.Loki.BearerTokenFile = filepath.Join(dir, "missing") },
		"ca file":            func(o *Options) { o.Loki.TLS.CAFile = notDir },
		"client certificate": func(o *Options) { o.Loki.TLS.CertFile, o.Loki.TLS.KeyFile = notDir, notDir },
		"external label":     func(o *Options) { o.Loki.ExternalLabels = map[string]string{"bad-name": "x"} },
		"reserved label":     func(o *Options) { o.Loki.ExternalLabels = map[string]string{"pod": "x"} },
		"no registerer":      func(o *Options) { o.Registerer = nil },
	} {
		opts := testOptions(t, dir)
		opts.Loki.URL = "http://127.0.0.1:1"
		mutate(&opts)
		cfg := config.Default()
		cfg.Logs, cfg.Loki = opts.Logs, opts.Loki
		if err := cfg.Validate(); err != nil {
			continue
		}
		if _, err := build(opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestPushMutualTLS: a Loki requiring client certificates, trusted through
// loki.tls.ca_file.
func TestPushMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "test CA", true)
	srvCert, srvKey := newCert(t, ca, caKey, "127.0.0.1", false)
	cliCert, cliKey := newCert(t, ca, caKey, "flink-agent", false)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cliCert.Raw)
	kb, _ := x509.MarshalECPrivateKey(cliKey)
	writePEM(t, filepath.Join(dir, "client-key.pem"), "EC PRIVATE KEY", kb)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	fl := &faultyLoki{}
	srv := httptest.NewUnstartedServer(fl)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	defer srv.Close()

	logs := t.TempDir()
	opts := testOptions(t, logs)
	opts.Loki.URL = srv.URL
	opts.Loki.TLS = config.TLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem")}
	writeEvents(t, filepath.Join(logs, "a.log"), 3)
	start(t, opts)
	eventually(t, 5*time.Second, "a push over mTLS", func() bool { _, _, n := fl.snapshot(); return n == 3 })
	reqs, _, _ := fl.snapshot()
	if reqs[0].TLS == nil || len(reqs[0].TLS.PeerCertificates) == 0 || reqs[0].TLS.PeerCertificates[0].Subject.CommonName != "flink-agent" {
		t.Errorf("no client certificate presented")
	}
}

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if strings.Count(cn, ".") == 3 {
		tmpl.IPAddresses = append(tmpl.IPAddresses, []byte{127, 0, 0, 1})
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
