package urlmask

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://localhost:8081", "http://localhost:8081"},
		{"http://flink:hunter2@jm:8081", "http://flink:xxxxx@jm:8081"},
		{"https://ghp_abcdef@github.com/x", "https://xxxxx@github.com/x"},
		{"http://loki:3100/loki/api/v1/push?token=abc123&tenant=t1", "http://loki:3100/loki/api/v1/push?token=xxxxx&tenant=t1"},
		{"https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=ff&X-Amz-Security-Token=zz&x-id=GetObject",
			"https://b.s3.amazonaws.com/k?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx&X-Amz-Security-Token=xxxxx&x-id=GetObject"},
		{"http://u:p%zz@h/?api_key=1", "http://xxxxx@h/?api_key=xxxxx"}, // does not parse
		{"https://acct.blob.core.windows.net/c?sv=1&sig=abc%2B&sp=r", "https://acct.blob.core.windows.net/c?sv=1&sig=xxxxx&sp=r"},
		{"not a url", "not a url"},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	in := `Post "http://u:pw1@loki:3100/loki/api/v1/push?token=tok1": dial tcp 127.0.0.1:3100: connect: connection refused; base http://a:pw2@jm`
	got := Text(in)
	for _, s := range []string{"pw1", "tok1", "pw2"} {
		if strings.Contains(got, s) {
			t.Errorf("%q left in %q", s, got)
		}
	}
	if !strings.Contains(got, "connection refused") || !strings.Contains(got, "http://u:xxxxx@loki:3100/loki/api/v1/push?token=xxxxx") {
		t.Errorf("Text = %q", got)
	}
}

// TestReplaceAttr logs URLs every way the agent does — attribute, error of
// net/http, *url.URL, message, group — and greps the output.
func TestReplaceAttr(t *testing.T) {
	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}),
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}),
	} {
		log := slog.New(h)
		u, _ := url.Parse("http://flink:s3cr3t-1@jm:8081/?token=s3cr3t-2")
		_, err := http.Get("http://flink:s3cr3t-3@127.0.0.1:1/jobs?access_token=s3cr3t-4")
		if err == nil {
			t.Fatal("no error from port 1")
		}
		log.Warn("scrape of http://x:s3cr3t-5@jm failed", "url", "http://flink:s3cr3t-6@jm:8081", "u", u, "err", err,
			slog.Group("loki", "url", "https://loki/?sig=s3cr3t-7"), "wrapped", errors.Join(errors.New("x"), err))
	}
	out := buf.String()
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("credentials in the log:\n%s", out)
	}
	if !strings.Contains(out, "flink:xxxxx@jm:8081") {
		t.Errorf("URLs gone entirely:\n%s", out)
	}
}
