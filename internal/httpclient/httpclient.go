// Package httpclient builds the agent's outbound HTTP clients — Flink REST,
// Loki, OTLP — with prometheus/common/config: TLS and mTLS (the client
// certificate re-read at each handshake), basic auth and bearer token read
// from files at each request (a rotated Secret is picked up), proxies.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/flink-agent/flink-agent/internal/config"
)

// Flink is the client for the Flink REST API (flink.* keys); the scrape's
// context bounds each request.
func Flink(f config.Flink, userAgent string) (*http.Client, error) {
	return New("flink", f.HTTPClientConfig(), 0, userAgent)
}

// Loki is the client for Loki pushes (loki.* keys), each request bounded by
// loki.timeout.
func Loki(l config.Loki, userAgent string) (*http.Client, error) {
	return New("loki", l.HTTPClientConfig(), l.Timeout.D(), userAgent)
}

// New builds a client from a validated HTTPClientConfig. section names the
// configuration section ("flink", "loki") in errors. Files it will read later
// are read now as well: an unreadable certificate, key or credentials file is
// a startup error naming its key, not a failure at the first request.
// timeout bounds a whole request (0: the caller's context does).
func New(section string, c promconfig.HTTPClientConfig, timeout time.Duration, userAgent string) (*http.Client, error) {
	if err := checkFiles(section, c); err != nil {
		return nil, err
	}
	hc, err := promconfig.NewClientFromConfig(c, section, promconfig.WithUserAgent(userAgent),
		promconfig.WithIdleConnTimeout(90*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	hc.Timeout = timeout
	return hc, nil
}

// TLS builds the TLS configuration of a client that is not an
// http.Client (OTLP over gRPC), checking its files as New does.
func TLS(section string, c promconfig.HTTPClientConfig) (*tls.Config, error) {
	if err := checkFiles(section, c); err != nil {
		return nil, err
	}
	t, err := promconfig.NewTLSConfig(&c.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("%s.tls: %w", section, err)
	}
	return t, nil
}

func checkFiles(section string, c promconfig.HTTPClientConfig) error {
	t := c.TLSConfig
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("%s.tls.ca_file: %w", section, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s.tls.ca_file: no PEM certificate in %s", section, t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return fmt.Errorf("%s.tls.cert_file/key_file: %w", section, err)
		}
	}
	if b := c.BasicAuth; b != nil && b.PasswordFile != "" {
		if _, err := os.ReadFile(b.PasswordFile); err != nil {
			return fmt.Errorf("%s.basic_auth.password_file: %w", section, err)
		}
	}
	if a := c.Authorization; a != nil && a.CredentialsFile != "" {
		b, err := os.ReadFile(a.CredentialsFile)
		if err != nil {
			return fmt.Errorf("%s.bearer_token_file: %w", section, err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return fmt.Errorf("%s.bearer_token_file: %s is empty", section, a.CredentialsFile)
		}
	}
	return nil
}
