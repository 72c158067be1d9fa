package shipper

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/flink-agent/flink-agent/internal/config"
)

// lokiHTTPClient builds the HTTP client for Loki pushes from the loki
// section: TLS (the client certificate read per handshake, so that a
// renewal applies), basic auth or a bearer token from files (read again
// after a 401 or 403, so that a rotated Secret applies), the per-request
// timeout. Unreadable files are errors now, at startup.
//
// Interim: github.com/prometheus/common/config's HTTPClientConfig replaces
// it, built where the agent is wired (issue 12).
func lokiHTTPClient(cfg config.Loki) (*http.Client, error) {
	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout.D(),
		ForceAttemptHTTP2:     true,
	}
	var rt http.RoundTripper = tr
	if cfg.BearerTokenFile != "" || cfg.BasicAuth.Username != "" {
		a := &authTransport{next: tr, username: cfg.BasicAuth.Username, passwordFile: cfg.BasicAuth.PasswordFile, tokenFile: cfg.BearerTokenFile}
		if err := a.load(); err != nil {
			return nil, err
		}
		rt = a
	}
	return &http.Client{Transport: rt, Timeout: cfg.Timeout.D()}, nil
}

// authTransport sets the Authorization header from files.
type authTransport struct {
	next         http.RoundTripper
	username     string
	passwordFile string
	tokenFile    string

	mu    sync.Mutex
	authz string
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	authz := a.authz
	a.mu.Unlock()
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", authz)
	resp, err := a.next.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		_ = a.load() // a failed read keeps the old credentials; the push is retried anyway
	}
	return resp, err
}

func (a *authTransport) load() error {
	var authz string
	switch {
	case a.tokenFile != "":
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return fmt.Errorf("loki.bearer_token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return fmt.Errorf("loki.bearer_token_file: %s is empty", a.tokenFile)
		}
		authz = "Bearer " + tok
	default:
		var pw string
		if a.passwordFile != "" {
			b, err := os.ReadFile(a.passwordFile)
			if err != nil {
				return fmt.Errorf("loki.basic_auth.password_file: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(a.username, pw)
		authz = req.Header.Get("Authorization")
	}
	a.mu.Lock()
	a.authz = authz
	a.mu.Unlock()
	return nil
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("loki.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loki.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return nil, fmt.Errorf("loki.tls.cert_file/key_file: %w", err)
		}
		// Read per handshake so that a renewed certificate (cert-manager)
		// is used without a restart.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, err
			}
			return &c, nil
		}
	}
	return cfg, nil
}
