package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process in its own process group. The kernel kills it if
// the test binary dies (Pdeathsig), and Stop kills the whole group, so no
// JVM or server outlives the test that started it.
type Proc struct {
	Name    string
	LogPath string // stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	once    sync.Once
}

// StartProc starts name with args, its output going to logDir/<name>.out.
func StartProc(name, logDir string, env []string, bin string, args ...string) (*Proc, error) {
	return StartProcAs(name, logDir, env, nil, bin, args...)
}

// StartProcAs is StartProc under another user (nil: this process's), e.g.
// to see what permission bits do, which root ignores.
func StartProcAs(name, logDir string, env []string, cred *syscall.Credential, bin string, args ...string) (*Proc, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".out")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group. It is safe to call more than once.
func (p *Proc) Stop(grace time.Duration) error {
	p.once.Do(func() {
		_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
		}
	})
	return nil
}

// Kill SIGKILLs the process group at once and waits for it.
func (p *Proc) Kill() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	})
}

// Wait waits for the process to exit and returns its error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tail returns the last n bytes of the process's output, for failure messages.
func (p *Proc) Tail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Ports for test processes come from below Linux's ephemeral range
// (net.ipv4.ip_local_port_range, 32768-60999 by default). A port the kernel
// hands out for ":0" can be handed out again — to another test package's
// FreePort or to an outgoing connection — between our Close and the test
// process binding it; below the range only another picker can take it,
// and picks are random over 12,000 ports and never repeat in a process.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

func freePort(try func(port int) error) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var last error
	for i := 0; i < 100; i++ {
		port := portLow + rand.IntN(portHigh-portLow)
		if portsUsed[port] {
			continue
		}
		if last = try(port); last == nil {
			portsUsed[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d after 100 tries: %v", portLow, portHigh, last)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	return freePort(func(port int) error {
		l, err := net.Listen("tcp", Addr(port))
		if err == nil {
			l.Close()
		}
		return err
	})
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort() (int, error) {
	return freePort(func(port int) error {
		c, err := net.ListenPacket("udp", Addr(port))
		if err == nil {
			c.Close()
		}
		return err
	})
}

// Addr is "127.0.0.1:port".
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// WaitFor polls check every interval until it returns nil, ctx ends, or the
// process p (if not nil) exits; the error carries the last check's error and
// the tail of p's output.
func WaitFor(ctx context.Context, p *Proc, interval time.Duration, check func(context.Context) error) error {
	var last error
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		var exited <-chan struct{}
		if p != nil {
			exited = p.done
		}
		select {
		case <-ctx.Done():
			return describe(p, fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last))
		case <-exited:
			return describe(p, fmt.Errorf("exited before it was ready: %v (last: %v)", p.err, last))
		case <-t.C:
		}
	}
}

func describe(p *Proc, err error) error {
	if p == nil {
		return err
	}
	return errors.New(p.Name + ": " + err.Error() + "\n--- " + p.LogPath + " (tail) ---\n" + p.Tail(4000))
}
