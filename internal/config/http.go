package config

import (
	"net/url"

	promconfig "github.com/prometheus/common/config"
)

// HTTPClientConfig maps the flink section's client keys (tls.*,
// basic_auth.*, bearer_token_file, proxy_url) onto prometheus/common's
// HTTPClientConfig, which builds the REST client. Flink's REST API never
// redirects where the agent should follow.
func (f Flink) HTTPClientConfig() promconfig.HTTPClientConfig {
	c := clientConfig(f.TLS, f.BasicAuth, f.BearerTokenFile, f.ProxyURL)
	c.FollowRedirects = false
	return c
}

// HTTPClientConfig maps the loki section's client keys onto
// prometheus/common's HTTPClientConfig, which builds the push client.
func (l Loki) HTTPClientConfig() promconfig.HTTPClientConfig {
	return clientConfig(l.TLS, l.BasicAuth, l.BearerTokenFile, l.ProxyURL)
}

// HTTPClientConfig maps the traces section's TLS keys onto
// prometheus/common's HTTPClientConfig: the OTLP/HTTP client, and the TLS
// configuration of the gRPC one. Headers are the exporter's own.
func (t Traces) HTTPClientConfig() promconfig.HTTPClientConfig {
	return clientConfig(t.TLS, BasicAuth{}, "", "")
}

func clientConfig(t TLS, b BasicAuth, bearerFile, proxy string) promconfig.HTTPClientConfig {
	c := promconfig.DefaultHTTPClientConfig
	c.TLSConfig = promconfig.TLSConfig{
		CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
		ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify,
		MinVersion: promconfig.TLSVersion(0x0303), // TLS 1.2
	}
	if b.Username != "" {
		c.BasicAuth = &promconfig.BasicAuth{Username: b.Username, PasswordFile: b.PasswordFile}
	}
	if bearerFile != "" {
		c.Authorization = &promconfig.Authorization{Type: "Bearer", CredentialsFile: bearerFile}
	}
	if u, err := url.Parse(proxy); proxy != "" && err == nil {
		c.ProxyURL = promconfig.URL{URL: u}
	} else {
		// As before these keys existed: HTTP_PROXY, HTTPS_PROXY, NO_PROXY.
		c.ProxyFromEnvironment = true
	}
	return c
}
