package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// capturer records what local servers send on each S2S connection
// ([capture] dir): every byte read from the connection is also written to
// a file of its own, so the files are raw captures of one direction of an
// S2S stream, as `isthmus bench` reads them.
type capturer struct {
	dir string
	seq atomic.Uint64
	log *slog.Logger
}

func newCapturer(dir string, log *slog.Logger) (*capturer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: capture: %w", err)
	}
	return &capturer{dir: dir, log: log}, nil
}

// wrap returns c recording its reads; dir is "in" (the local server
// connected to us) or "out" (we connected to it).
func (cp *capturer) wrap(c net.Conn, dir string) net.Conn {
	addr := strings.NewReplacer(":", "_", "[", "", "]", "").Replace(c.RemoteAddr().String())
	name := fmt.Sprintf("%s-%s-%04d-%s.xml", time.Now().UTC().Format("20060102T150405Z"), dir, cp.seq.Add(1), addr)
	f, err := os.OpenFile(filepath.Join(cp.dir, name), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		cp.log.Warn("gateway: capture: not recording", "err", err)
		return c
	}
	return &captureConn{Conn: c, w: f}
}

func (cp *capturer) listener(l net.Listener) net.Listener { return &captureListener{l, cp} }

func (cp *capturer) dialer(d s2s.Dialer) s2s.Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var err error
		if d != nil {
			c, err = d(ctx, network, addr)
		} else {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		return cp.wrap(c, "out"), nil
	}
}

type captureListener struct {
	net.Listener
	cp *capturer
}

func (l *captureListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.cp.wrap(c, "in"), nil
}

type captureConn struct {
	net.Conn
	mu sync.Mutex // guards w
	w  io.WriteCloser
}

func (c *captureConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.w != nil {
			if _, werr := c.w.Write(p[:n]); werr != nil {
				c.w.Close()
				c.w = nil
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *captureConn) Close() error {
	c.mu.Lock()
	if c.w != nil {
		c.w.Close()
		c.w = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
