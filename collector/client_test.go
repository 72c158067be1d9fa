package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/sink"
)

func TestLenientNumbers(t *testing.T) {
	var v struct {
		A, B, C, D, E, F, G number
		I, J, K, L, M, N, O integer
	}
	in := `{"A":12.5,"B":"34","C":"NaN","D":null,"E":"Infinity","F":"not a number","G":1e3,
		"I":9223372036854775807,"J":"-1","K":"NaN","L":null,"M":12.0,"N":1E300,"O":"17"}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	nums := []struct {
		got  number
		want float64
		ok   bool
	}{{v.A, 12.5, true}, {v.B, 34, true}, {v.C, 0, false}, {v.D, 0, false}, {v.E, 0, false}, {v.F, 0, false}, {v.G, 1000, true}}
	for i, c := range nums {
		if c.got.OK != c.ok || c.got.V != c.want {
			t.Errorf("number %d = %+v, want %v %v", i, c.got, c.want, c.ok)
		}
	}
	ints := []struct {
		got  integer
		want int64
		ok   bool
	}{{v.I, math.MaxInt64, true}, {v.J, -1, true}, {v.K, 0, false}, {v.L, 0, false}, {v.M, 12, true}, {v.N, math.MaxInt64, true}, {v.O, 17, true}}
	for i, c := range ints {
		if c.got.OK != c.ok || c.got.V != c.want {
			t.Errorf("integer %d = %+v, want %v %v", i, c.got, c.want, c.ok)
		}
	}
	// Absent fields are no value, not zero.
	var absent struct{ X integer }
	_ = json.Unmarshal([]byte(`{}`), &absent)
	if absent.X.OK {
		t.Error("an absent field has a value")
	}
	if _, ok := millis(math.MaxInt64); ok {
		t.Error("Long.MAX_VALUE milliseconds became a Duration")
	}
}

func TestSanitizeVertex(t *testing.T) {
	long := "Source: TableSourceScan(table=[[default_catalog, default_database, orders]], fields=[user_id, ts]) -> Calc(select=[user_id])"
	cases := map[[2]string]string{
		{"Source: orders -> parse", "v1"}:             "Source: orders -> parse",
		{"  count\n  ->\tdiscard \x00 ", "v2"}:        "count -> discard",
		{"", "0a448493b4782967b150582570326227"}:      "0a448493b4782967b150582570326227",
		{long, "0a448493b4782967b150582570326227"}:    "Source: TableSourceScan(table=[[default_catalog, default_database, o...~0a448493",
		{strings.Repeat("é", 60), "cafe0000cafe0000"}: strings.Repeat("é", 34) + "...~cafe0000",
	}
	for in, want := range cases {
		got := sanitizeVertex(in[0], in[1])
		if got != want {
			t.Errorf("sanitizeVertex(%q) = %q, want %q", in[0], got, want)
		}
		if len(got) > maxVertexLabel {
			t.Errorf("label %q longer than %d", got, maxVertexLabel)
		}
	}
}

// pki is a throwaway CA with a server and a client certificate.
type pki struct {
	dir                   string
	caFile                string
	serverCert            tls.Certificate
	clientCert, clientKey string
	pool                  *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{"flink-jobmanager"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := issue("flink-jobmanager", 2, x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue("flink-agent", 3, x509.ExtKeyUsageClientAuth)
	keyDER, _ := x509.MarshalECPrivateKey(cKey)
	p.clientCert = p.write(t, "client.pem", "CERTIFICATE", cDER)
	p.clientKey = p.write(t, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClientMutualTLSBasicAuthUserAgentGzip: Flink REST behind mTLS with
// basic auth answers gzip; the collector verifies the server against the CA,
// presents its certificate, authenticates, names itself, and inflates.
func TestClientMutualTLSBasicAuthUserAgentGzip(t *testing.T) {
	p := newPKI(t)
	pass := filepath.Join(t.TempDir(), "password")
	must(t, os.WriteFile(pass, []byte("s3cret\n"), 0o600))
	routes, _ := captured(t, "testdata/flink-1.20.0", nil)
	var sawUA, sawAuth, sawClientCert, sawGzip bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		if !ok || u != "agent" || pw != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		sawAuth = true
		sawUA = r.UserAgent() == "flink-agent/1.2.3"
		sawClientCert = len(r.TLS.PeerCertificates) == 1 && r.TLS.PeerCertificates[0].Subject.CommonName == "flink-agent"
		body, err := os.ReadFile(routes[r.URL.Path])
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			_, _ = w.Write(body)
			return
		}
		sawGzip = true
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(body)
		_ = zw.Close()
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()

	f := config.Default().Flink
	f.RestURL = srv.URL
	f.TLS = config.TLS{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "flink-jobmanager"}
	f.BasicAuth = config.BasicAuth{Username: "agent", PasswordFile: pass}
	reg := prometheus.NewRegistry()
	c, err := New(Options{Flink: f, Registerer: reg, UserAgent: "flink-agent/1.2.3", Watch: testWatch(t, sink.Options{Registerer: reg})})
	must(t, err)
	defer c.Close()
	must(t, c.Scrape(context.Background()))
	if !sawAuth || !sawUA || !sawClientCert || !sawGzip {
		t.Errorf("auth %v, user agent %v, client certificate %v, gzip %v", sawAuth, sawUA, sawClientCert, sawGzip)
	}
	if v := gatherValue(t, reg, "flink_job_info", "job_name", "flink-agent testbed checkpointing job"); v != 1 {
		t.Errorf("the gzip answer was not decoded: flink_job_info = %v", v)
	}

	// Without the client certificate the server refuses: flink_up 0, no crash.
	f.TLS.CertFile, f.TLS.KeyFile = "", ""
	reg2 := prometheus.NewRegistry()
	c2, err := New(Options{Flink: f, Registerer: reg2, Watch: testWatch(t, sink.Options{Registerer: reg2})})
	must(t, err)
	defer c2.Close()
	if err := c2.Scrape(context.Background()); err == nil {
		t.Error("a scrape without the client certificate succeeded")
	}
}

// TestGzipBombBounded: the body limit applies to the inflated body.
func TestGzipBombBounded(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write([]byte(`{"jobs":[],"x":"`))
	// A valid string that never ends: only the limit stops it (zeros would
	// be refused as soon as they are read).
	letters := bytes.Repeat([]byte("a"), 1<<20)
	for range 50 {
		_, _ = zw.Write(letters)
	}
	_ = zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(z.Bytes())
	}))
	defer srv.Close()
	h := newHarness(t, &fixtureServer{srv: srv}, time.Now(), func(o *Options) { o.Flink.MaxResponseBytes = 1 << 20 })
	err := h.scrape()
	if err == nil || !strings.Contains(err.Error(), "max_response_bytes") {
		t.Fatalf("a %d-byte gzip of 50 MiB: err = %v, want the body limit", z.Len(), err)
	}
}

// TestNewFailsFast: bad settings are startup errors naming their key.
func TestNewFailsFast(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	must(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	cases := map[string]func(*config.Flink){
		"flink.rest_url":               func(f *config.Flink) { f.RestURL = "localhost:8081" },
		"flink.tls.ca_file: open":      func(f *config.Flink) { f.TLS.CAFile = filepath.Join(dir, "missing.pem") },
		"flink.tls.ca_file: no PEM":    func(f *config.Flink) { f.TLS.CAFile = notPEM },
		"flink.tls.cert_file/key_file": func(f *config.Flink) { f.TLS.CertFile, f.TLS.KeyFile = p.clientCert, notPEM },
		"flink.basic_auth.password_file": func(f *config.Flink) {
			f.BasicAuth = config.BasicAuth{Username: "u", PasswordFile: filepath.Join(dir, "nope")}
		},
		"collector: a Registerer is required": nil,
	}
	for want, mod := range cases {
		f := config.Default().Flink
		reg := prometheus.Registerer(prometheus.NewRegistry())
		if mod != nil {
			mod(&f)
		} else {
			reg = nil
		}
		_, err := New(Options{Flink: f, Registerer: reg, Logger: slog.New(slog.DiscardHandler),
			Watch: testWatch(t, sink.Options{Registerer: prometheus.NewRegistry()})})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}
