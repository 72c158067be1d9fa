package testbed

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// Alertmanager is a real Alertmanager (built by `scripts/tools.sh
// promtools`) with its state under Dir, listening on loopback only and
// without clustering (no gossip port).
type Alertmanager struct {
	Proc *Proc
	Dir  string
	URL  string // http://127.0.0.1:port
}

// StartAlertmanager writes config into dir and starts Alertmanager on it
// (port 0: a free one), returning once it is ready.
func StartAlertmanager(ctx context.Context, dir string, config []byte, port int) (*Alertmanager, error) {
	bin, err := Tool("alertmanager")
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, config, 0o644); err != nil {
		return nil, err
	}
	a := &Alertmanager{Dir: dir, URL: "http://" + Addr(port)}
	a.Proc, err = StartProc("alertmanager", dir, nil, bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+Addr(port),
		"--web.external-url="+a.URL+"/",
		// Empty: no cluster listener, so nothing binds 0.0.0.0:9094.
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := WaitFor(wctx, a.Proc, 100*time.Millisecond, func(ctx context.Context) error {
		return getOK(ctx, a.URL+"/-/ready")
	}); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Addr is the host:port Alertmanager listens on.
func (a *Alertmanager) Addr() string { return a.URL[len("http://"):] }

// Stop stops Alertmanager.
func (a *Alertmanager) Stop() { _ = a.Proc.Stop(10 * time.Second) }
