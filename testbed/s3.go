package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an S3-compatible endpoint on loopback (gofakes3, in memory) that can
// be told to throttle: it then answers requests with 503 SlowDown exactly as
// Amazon S3 does, so S3 clients such as Flink's flink-s3-fs-presto raise and
// log their real throttling exceptions.
type S3 struct {
	URL       string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	backend   *s3mem.Backend
	srv       *http.Server
	done      chan struct{}
	throttle  atomic.Uint64 // math.Float64bits of the fraction to throttle
	requests  atomic.Int64
	throttled atomic.Int64
	reqID     atomic.Uint64
}

// StartS3 starts the endpoint with the given buckets created.
func StartS3(buckets ...string) (*S3, error) {
	be := s3mem.New()
	for _, b := range buckets {
		if err := be.CreateBucket(b); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &S3{
		URL:       "http://" + ln.Addr().String(),
		AccessKey: "testbed",
		SecretKey: "testbed-secret",
		backend:   be,
		done:      make(chan struct{}),
	}
	// gofakes3 checks neither signatures nor credentials; any key works.
	fake := gofakes3.New(be, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s.srv = &http.Server{Handler: s.wrap(fake.Server()), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Endpoint is what FlinkOptions.S3 needs.
func (s *S3) Endpoint() *S3Endpoint {
	return &S3Endpoint{URL: s.URL, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// SetThrottle makes the endpoint answer this fraction of requests (0 = none,
// 1 = all) with 503 SlowDown.
func (s *S3) SetThrottle(fraction float64) {
	s.throttle.Store(math.Float64bits(max(0, min(1, fraction))))
}

// Requests is the number of requests received, throttled ones included.
func (s *S3) Requests() int64 { return s.requests.Load() }

// Throttled is the number of requests answered with 503 SlowDown.
func (s *S3) Throttled() int64 { return s.throttled.Load() }

// Keys lists the object keys in bucket under prefix.
func (s *S3) Keys(bucket, prefix string) ([]string, error) {
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(list.Contents))
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

// Stop closes the listener and open connections.
func (s *S3) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = s.srv.Close()
	}
	<-s.done
}

// slowDown is Amazon S3's throttling answer, body and headers alike.
const slowDownXML = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>%s</RequestId><HostId>%s</HostId></Error>`

// slowDown answers like Amazon S3 does: status line "503 Slow Down" (which
// SDKs report for bodiless HEAD answers: "Slow Down (…; Error Code: 503 Slow
// Down; …)"), request ids in headers, the SlowDown XML in the body. net/http
// cannot send a custom reason phrase, so the connection is hijacked.
func (s *S3) slowDown(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("%016X", s.reqID.Add(1))
	hostID := "testbed/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body := ""
	if r.Method != http.MethodHead {
		body = fmt.Sprintf(slowDownXML, id, hostID)
	}
	// A client waiting for "100 Continue" sends no body; any other body is
	// read first, so closing the connection does not reset it under the client.
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 256<<20))
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.Header().Set("x-amz-request-id", id)
		w.Header().Set("x-amz-id-2", hostID)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, body)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 503 Slow Down\r\nx-amz-request-id: %s\r\nx-amz-id-2: %s\r\nDate: %s\r\n"+
		"Content-Type: application/xml\r\nServer: AmazonS3\r\nConnection: close\r\n",
		id, hostID, time.Now().UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		// A HEAD answer announces the length the GET would have.
		fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n", len(fmt.Sprintf(slowDownXML, id, hostID)))
	} else {
		fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	_ = buf.Flush()
}

func (s *S3) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if f := math.Float64frombits(s.throttle.Load()); f > 0 && (f >= 1 || rand.Float64() < f) {
			s.throttled.Add(1)
			s.slowDown(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
