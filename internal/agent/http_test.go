package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/flink-agent/flink-agent/internal/config"
)

// With basic auth in the web configuration, over HTTP and over HTTPS (which
// kubelet probes use without verifying), /healthz and /readyz answer
// without credentials — their own answers, 503 included — while /metrics
// and the landing page still need them. Run with -race: the probes are put
// in front of the toolkit's handler while it starts serving.
func TestProbesNeedNoCredentials(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := selfSigned(t, dir)
	users := "basic_auth_users:\n  prometheus: " + string(hash) + "\n"
	for _, tc := range []struct {
		name, scheme, config string
	}{
		{"basic auth", "http", users},
		{"TLS and basic auth", "https", "tls_server_config:\n  cert_file: " + cert + "\n  key_file: " + key + "\n" + users},
	} {
		t.Run(tc.name, func(t *testing.T) {
			webConfig := filepath.Join(t.TempDir(), "web.yml")
			if err := os.WriteFile(webConfig, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			st := newStatus()
			mux, probes, err := newMux(prometheus.NewRegistry(), st, config.Default().Web, "test")
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			done := make(chan error, 1)
			go func() { done <- serve(ln, srv, probes, webConfig, slog.New(slog.DiscardHandler)) }()
			defer func() {
				_ = srv.Shutdown(context.Background())
				if err := <-done; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("serve: %v", err)
				}
			}()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as kubelet's HTTPS probes
			base := tc.scheme + "://" + ln.Addr().String()
			get := func(path string, auth bool) int {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, base+path, http.NoBody)
				if auth {
					req.SetBasicAuth("prometheus", "s3cret")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for _, c := range []struct {
				path string
				auth bool
				want int
			}{
				{"/healthz", false, 200},
				{"/readyz", false, 503}, // not ready yet: the probe's own answer
				{"/metrics", false, 401},
				{"/", false, 401},
				{"/healthz/", false, 401},
				{"/metrics", true, 200},
				{"/healthz", true, 200},
			} {
				if got := get(c.path, c.auth); got != c.want {
					t.Errorf("%s (credentials %v): %d, want %d", c.path, c.auth, got, c.want)
				}
			}
			st.setReady()
			if got := get("/readyz", false); got != 200 {
				t.Errorf("/readyz when ready: %d", got)
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flink-agent"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
